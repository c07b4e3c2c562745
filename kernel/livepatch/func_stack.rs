// SPDX-License-Identifier: GPL-2.0

//! The redirect's data: one [`KlpOps`] per patched function, holding the
//! `ftrace_ops` ftrace calls the handler with and the function's
//! `func_stack`: the `klp_func`s that redirect it, newest first, linked
//! through their `stack_node`.
//!
//! The ftrace handler reads the table and the stacks without locks while
//! the core changes them under `klp_mutex`, with the publication rules of
//! the kernel's RCU lists (`list_add_rcu()`, `list_del_rcu()`): readers see
//! a fully linked entry or none, and a removed entry (and a retired ops)
//! stays readable until readers are done. What the handler decides is the
//! redirect's ([`Redirect`], implemented in `crate::patch`); every `unsafe`
//! of the table, the stacks and the handler's arguments is here.

use core::ptr::{addr_of, addr_of_mut, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

use kernel::bindings;
use kernel::ffi::c_ulong;
use kernel::prelude::*;
use kernel::sync::rcu;
use kernel::types::Opaque;

use crate::arch;
use crate::ftrace::{self, RegisterError};
use crate::lock::Locked;
use crate::structs::Func;

/// `LIST_POISON2` (x86_64's `POISON_POINTER_DELTA` plus 0x122), left in a
/// removed entry's back link as C does, so a stray use faults recognisably.
const LIST_POISON2: *mut bindings::list_head =
    core::ptr::without_provenance_mut(0xdead_0000_0000_0122);

/// The forward link of a list node, as the lockless readers load it.
///
/// # Safety
///
/// `node` is a valid list node for `'a`.
#[inline(always)]
unsafe fn next_cell<'a>(node: *mut bindings::list_head) -> &'a AtomicPtr<bindings::list_head> {
    // SAFETY: valid (caller's contract); `next` is pointer-sized and
    // aligned, and every concurrent access to it is atomic.
    unsafe { AtomicPtr::from_ptr(addr_of_mut!((*node).next)) }
}

/// The `func_stack` of one patched function.
///
/// # Invariants
///
/// An initialised list head; its entries are the `stack_node`s of
/// functions whose `patched` flag is set, added and removed only under
/// `klp_mutex`, and readable until an RCU grace period after removal.
#[repr(transparent)]
struct FuncStack(Opaque<bindings::list_head>);

impl FuncStack {
    fn head(&self) -> *mut bindings::list_head {
        self.0.get()
    }

    /// The entry after `node`, or `None` at the end.
    ///
    /// # Safety
    ///
    /// `node` is the head or an entry of this stack.
    #[inline(always)]
    unsafe fn after(&self, node: *mut bindings::list_head) -> Option<&Func> {
        // SAFETY: a node of this stack (caller's contract).
        let next = unsafe { next_cell(node) }.load(Acquire);
        // SAFETY: not the head, so the `stack_node` of a function that stays
        // readable while the ops is (invariant).
        (next != self.head()).then(|| unsafe { Func::from_stack_node(next) })
    }
}

/// The ftrace registration and the `func_stack` of one patched function.
///
/// # Invariants
///
/// `fops` is the first member, so ftrace's `ops` argument is the `KlpOps`.
/// A `KlpOps` is made by [`KlpOps::create`] and freed only by
/// [`KlpOps::retire`], an RCU grace period after it left the table.
#[repr(C)]
pub(crate) struct KlpOps {
    fops: Opaque<bindings::ftrace_ops>,
    stack: FuncStack,
    old_func: usize,
    /// The ftrace location the filter names (`old_func`, or 4 bytes in
    /// after an `endbr64`).
    loc: usize,
    /// The next ops in the table.
    next: AtomicPtr<KlpOps>,
    /// For `kvfree_call_rcu()`; its offset must fit `kvfree_rcu`'s encoding.
    rcu: Opaque<bindings::kvfree_rcu_head>,
}

const _: () = assert!(core::mem::offset_of!(KlpOps, rcu) < 4096);

/// The table of [`KlpOps`], newest first: a singly linked list published
/// with Release and walked with Acquire.
static TABLE: AtomicPtr<KlpOps> = AtomicPtr::new(core::ptr::null_mut());

/// The ops of `old_func`, if it is patched.
///
/// # Safety
///
/// For `'a`, the caller holds `klp_mutex` or is in an RCU read-side
/// section.
unsafe fn find_any<'a>(old_func: usize) -> Option<&'a KlpOps> {
    let mut cur = TABLE.load(Acquire);
    while let Some(ptr) = NonNull::new(cur) {
        // SAFETY: an ops in the table, or one retired less than a grace
        // period ago, which the lock or the read-side section the caller is
        // in for `'a` keeps alive.
        let ops = unsafe { ptr.as_ref() };
        if ops.old_func == old_func {
            return Some(ops);
        }
        cur = ops.next.load(Acquire);
    }
    None
}

/// The ops of `old_func`, under `klp_mutex` (which every change holds).
pub(crate) fn find(_locked: &Locked, old_func: usize) -> Option<&KlpOps> {
    // SAFETY: `klp_mutex` is held for the borrow of `_locked`.
    unsafe { find_any(old_func) }
}

/// The ops of `old_func`, in an RCU read-side section (which a retired
/// ops outlives).
pub(crate) fn find_rcu(_rcu: &rcu::Guard, old_func: usize) -> Option<&KlpOps> {
    // SAFETY: in a read-side section for the borrow of `_rcu`.
    unsafe { find_any(old_func) }
}

/// What the ftrace handler does for a call of a patched function: where
/// the call continues, or `None` for the original code.
pub(crate) trait Redirect {
    fn target(ops: &KlpOps) -> Option<usize>;
}

/// The handler ftrace calls, for `R`'s redirect.
///
/// # Safety
///
/// Called by ftrace with a `KlpOps`'s `fops`, which ftrace keeps alive
/// during the call, and the live register frame of the traced call.
unsafe extern "C" fn handler<R: Redirect>(
    ip: c_ulong,
    parent_ip: c_ulong,
    fops: *mut bindings::ftrace_ops,
    fregs: *mut bindings::ftrace_regs,
) {
    let locked = ftrace::with_recursion_lock(ip, parent_ip, || {
        // SAFETY: `fops` is the first member of a live `KlpOps` (caller's
        // contract, type invariant).
        let ops = unsafe { &*fops.cast::<KlpOps>() };
        if let Some(target) = R::target(ops) {
            // SAFETY: the frame of the traced call (caller's contract). The
            // target is a replacement the module declared for this function
            // (with its signature, as `livepatch.h` requires) and kallsyms
            // found when the patch was enabled.
            unsafe { arch::set_instruction_pointer(fregs, target) };
        }
    });
    crate::warn_on_once!(locked.is_none());
}

/// A function on a stack, found by walking it: the handler's cursor.
pub(crate) struct StackEntry<'a> {
    stack: &'a FuncStack,
    func: &'a Func,
}

impl<'a> StackEntry<'a> {
    #[inline(always)]
    pub(crate) fn func(&self) -> &'a Func {
        self.func
    }

    /// The entry below this one.
    #[inline(always)]
    pub(crate) fn below(&self) -> Option<StackEntry<'a>> {
        // SAFETY: `func` was reached by walking `stack`, so its node is an
        // entry of it, or one removed since, whose `next` still leads along
        // the stack (RCU list removal), readable for `'a`.
        unsafe { self.stack.after(self.func.stack_node()) }.map(|func| StackEntry {
            stack: self.stack,
            func,
        })
    }
}

impl KlpOps {
    /// The newest function of the stack, as the handler reads it.
    #[inline(always)]
    pub(crate) fn top(&self) -> Option<StackEntry<'_>> {
        // SAFETY: the head of this stack.
        unsafe { self.stack.after(self.stack.head()) }.map(|func| StackEntry {
            stack: &self.stack,
            func,
        })
    }

    /// Whether one function is left on the stack.
    pub(crate) fn is_singular(&self) -> bool {
        let head = self.stack.head();
        // SAFETY: an initialised head (invariant).
        unsafe { (*head).next != head && (*head).next == (*head).prev }
    }

    /// Pushes `func`, which is not patched, and marks it patched.
    pub(crate) fn push(&self, locked: &Locked, func: &Func) -> Result {
        if func.patched() || func.old_func() != self.old_func {
            return Err(EINVAL);
        }
        let head = self.stack.head();
        let node = func.stack_node();
        // SAFETY: under `klp_mutex`, the only writer; `node` is on no stack
        // (it is not patched). Readers see the node only once fully linked.
        unsafe {
            let first = (*head).next;
            (*node).next = first;
            (*node).prev = head;
            next_cell(head).store(node, Release);
            (*first).prev = node;
        }
        func.set_patched(locked, true);
        Ok(())
    }

    /// Removes `func`, which is on this stack, and marks it not patched.
    fn remove(&self, locked: &Locked, func: &Func) {
        let node = func.stack_node();
        // SAFETY: under `klp_mutex`; `node` is on this stack (checked by the
        // callers through `patched` and the address). Readers that are on it
        // still follow its `next`.
        unsafe {
            let (prev, next) = ((*node).prev, (*node).next);
            (*next).prev = prev;
            next_cell(prev).store(next, Release);
            (*node).prev = LIST_POISON2;
        }
        func.set_patched(locked, false);
    }

    /// Takes `func` off the stack; the last one retires the whole ops.
    pub(crate) fn pop(&self, locked: &Locked, func: &Func) -> Result {
        if !func.patched() || func.old_func() != self.old_func {
            return Err(EINVAL);
        }
        if self.is_singular() {
            self.retire(locked, func);
        } else {
            self.remove(locked, func);
        }
        Ok(())
    }

    /// Makes the ops of `func`'s old code, with `func` on its stack, and
    /// registers `R`'s handler at the ftrace location `loc`.
    pub(crate) fn create<R: Redirect>(locked: &Locked, func: &Func, loc: usize) -> Result {
        let ops = KBox::new(
            KlpOps {
                fops: Opaque::zeroed(),
                stack: FuncStack(Opaque::zeroed()),
                old_func: func.old_func(),
                loc,
                next: AtomicPtr::new(core::ptr::null_mut()),
                rcu: Opaque::zeroed(),
            },
            GFP_KERNEL,
        )?;
        let head = ops.stack.head();
        // SAFETY: ours alone until registered.
        unsafe {
            (*head).next = head;
            (*head).prev = head;
        }
        ops.push(locked, func)?;
        let ops = KBox::into_raw(ops);
        // SAFETY: a zeroed `ftrace_ops` in a heap block that stays where it
        // is until `retire` unregistered it.
        let registered = unsafe { ftrace::register((*ops).fops.get(), loc, handler::<R>) };
        if let Err(err) = registered {
            let (what, e) = match err {
                RegisterError::Filter(e) => ("set ftrace filter", e),
                RegisterError::Register(e) => ("register ftrace handler", e),
            };
            pr_err!(
                "failed to {} for function '{}' ({})\n",
                what,
                func.old_name(),
                e.to_errno()
            );
            func.set_patched(locked, false);
            // SAFETY: from `KBox::into_raw` above; ftrace holds no pointer to
            // it, since registering failed (and cleaned up after itself).
            drop(unsafe { KBox::from_raw(ops) });
            return Err(e);
        }
        // SAFETY: not yet published: only we access it.
        unsafe { (*ops).next.store(TABLE.load(Relaxed), Relaxed) };
        TABLE.store(ops, Release);
        Ok(())
    }

    /// Unregisters the ops, takes its last function off, unlinks it from the
    /// table and frees it after a grace period (`klp_unpatch_func()` on the
    /// last function).
    fn retire(&self, locked: &Locked, last: &Func) {
        // SAFETY: registered by `create`; unregistering waits for running
        // handlers of this ops to finish.
        let (unreg, filter) = unsafe { ftrace::unregister(self.fops.get(), self.loc) };
        kernel::warn_on!(unreg.is_err());
        kernel::warn_on!(filter.is_err());
        self.remove(locked, last);
        let target = core::ptr::from_ref(self).cast_mut();
        let mut link = &TABLE;
        loop {
            let cur = link.load(Relaxed);
            if cur.is_null() {
                kernel::warn_on!(true);
                return;
            }
            if cur == target {
                link.store(self.next.load(Relaxed), Release);
                break;
            }
            // SAFETY: an ops in the table; under `klp_mutex` none is freed.
            link = unsafe { &(*cur).next };
        }
        // SAFETY: allocated by `create` as a `KBox`, off the table and
        // unregistered, so only readers that started before can see it; the
        // grace period waits for them. `rcu` is within the first page.
        unsafe { bindings::kvfree_call_rcu(Opaque::cast_into(addr_of!(self.rcu)), target.cast()) };
    }
}
