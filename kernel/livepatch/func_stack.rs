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
//! redirect's (`crate::redirect` implements `kernel::ftrace::FtraceHandler` for
//! [`KlpStack`]); every `unsafe` of the table and the stacks is here, and the
//! one of redirecting a call ([`redirect`]).

use core::ptr::{addr_of_mut, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

use kernel::bindings;
use kernel::prelude::*;
use kernel::sync::rcu::{self, RcuHead};
use kernel::types::Opaque;

use kernel::ftrace::{Flags, FtraceCall, FtraceOps, RegisterError};

use crate::lock::Locked;
use crate::structs::{Func, StackWriter};

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

/// The `func_stack` of one patched function and what finds and frees it:
/// the data of its [`KlpOps`].
pub(crate) struct KlpStack {
    stack: FuncStack,
    old_func: usize,
    /// The ftrace location the filter names (`old_func`, or 4 bytes in
    /// after an `endbr64`).
    loc: usize,
    /// The next ops in the table.
    next: AtomicPtr<KlpOps>,
    /// What frees the retired ops after a grace period.
    rcu: RcuHead,
}

kernel::impl_has_rcu_head!(KlpStack { rcu });

// SAFETY: shared by the handler on every CPU, which only reads the stack
// (published with Release, read with Acquire) and the fixed `old_func`;
// `next` is atomic; everything else changes only under `klp_mutex`, and
// `rcu` only once the ops left the table, through `kvfree_rcu()`.
unsafe impl Sync for KlpStack {}

/// The ftrace registration of one patched function, with its stack.
///
/// # Invariants
///
/// Made by [`KlpStack::create`] in a `KBox`, and freed only by
/// [`KlpStack::retire`], an RCU grace period after it left the table.
pub(crate) type KlpOps = FtraceOps<KlpStack>;

const _: () =
    assert!(core::mem::size_of::<bindings::ftrace_ops>() + core::mem::size_of::<KlpStack>() < 4096);

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
        if ops.data().old_func == old_func {
            return Some(ops);
        }
        cur = ops.data().next.load(Acquire);
    }
    None
}

/// The only writer of functions' `patched` flags.
// SAFETY: this file sets `patched` exactly when it links a function into a
// stack (`push`) or unlinks it (`remove`).
static STACKS: StackWriter = unsafe { StackWriter::new() };

/// Redirects `func` (not patched yet): pushes it on the stack of its old
/// code, first registering the handler there if the code has none.
pub(crate) fn push(locked: &Locked, func: &Func) -> Result {
    // SAFETY: `klp_mutex` is held, and the ops does not outlive this call
    // (a push never retires one).
    match unsafe { find_any(func.old_func()) } {
        Some(ops) => ops.data().push(locked, func),
        None => {
            // The `call __fentry__`: the first instruction, or 4 bytes in
            // after an IBT `endbr64`; `None` for a function ftrace cannot
            // trace (notrace, inlined, or not a function start).
            let Some(loc) = kernel::ftrace::location(func.old_func()) else {
                pr_err!(
                    "failed to find location for function '{}'\n",
                    func.old_name()
                );
                return Err(EINVAL);
            };
            KlpStack::create(locked, func, loc)
        }
    }
}

/// Takes `func` (patched) off its stack; the last one retires the handler.
pub(crate) fn pop(locked: &Locked, func: &Func) -> Result {
    // SAFETY: `klp_mutex` is held; the ops is not used after `pop`, which
    // may retire it.
    let ops = unsafe { find_any(func.old_func()) }.ok_or(EINVAL)?;
    KlpStack::pop(ops, locked, func)
}

/// The ops of `old_func`, in an RCU read-side section (which a retired
/// ops outlives).
pub(crate) fn find_rcu(_rcu: &rcu::Guard, old_func: usize) -> Option<&KlpStack> {
    // SAFETY: in a read-side section for the borrow of `_rcu`.
    unsafe { find_any(old_func) }.map(FtraceOps::data)
}

/// Makes the traced `call` continue in `entry`'s function, unless it is a
/// nop (whose "replacement" is the original code, where the call goes on
/// anyway). `entry` must be on the stack of the traced function, which
/// `call` carries; another stack's entry is refused (with a warning).
#[inline(always)]
pub(crate) fn redirect(call: &FtraceCall<'_, KlpStack>, entry: &StackEntry<'_>) {
    if crate::warn_on_once!(!core::ptr::eq(entry.stack, &call.data().stack)) {
        return;
    }
    let func = entry.func();
    if func.nop() {
        return;
    }
    // SAFETY: the function is on the stack of the traced function (checked
    // above), not a nop: its `new_func` is the replacement its module
    // declared for that function (with its signature, as `livepatch.h`
    // requires), which kallsyms found when the patch was enabled, and which
    // stays while the function is on a stack (its module is held).
    unsafe { call.set_instruction_pointer(func.new_func()) };
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

impl KlpStack {
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
    fn is_singular(&self) -> bool {
        let head = self.stack.head();
        // SAFETY: an initialised head (invariant).
        unsafe { (*head).next != head && (*head).next == (*head).prev }
    }

    /// Pushes `func`, which is not patched, and marks it patched.
    fn push(&self, locked: &Locked, func: &Func) -> Result {
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
        func.set_patched(&STACKS, locked, true);
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
        func.set_patched(&STACKS, locked, false);
    }

    /// Takes `func` off the stack of `ops`; the last one retires the ops.
    fn pop(ops: &KlpOps, locked: &Locked, func: &Func) -> Result {
        let this = ops.data();
        if !func.patched() || func.old_func() != this.old_func {
            return Err(EINVAL);
        }
        if this.is_singular() {
            Self::retire(ops, locked, func);
        } else {
            this.remove(locked, func);
        }
        Ok(())
    }

    /// Makes the ops of `func`'s old code, with `func` on its stack, and
    /// registers its handler at the ftrace location `loc`.
    fn create(locked: &Locked, func: &Func, loc: usize) -> Result {
        let ops = KBox::new(
            FtraceOps::new(KlpStack {
                stack: FuncStack(Opaque::zeroed()),
                old_func: func.old_func(),
                loc,
                next: AtomicPtr::new(core::ptr::null_mut()),
                rcu: RcuHead::new(),
            }),
            GFP_KERNEL,
        )?;
        let head = ops.data().stack.head();
        // SAFETY: ours alone until registered.
        unsafe {
            (*head).next = head;
            (*head).prev = head;
        }
        ops.data().push(locked, func)?;
        let ops = KBox::into_raw(ops);
        let flags = Flags::PERMANENT;
        // SAFETY: not registered, in a heap block that stays where it is
        // until `retire` unregistered it.
        let registered = unsafe { (*ops).register(loc, flags) };
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
            func.set_patched(&STACKS, locked, false);
            // SAFETY: from `KBox::into_raw` above; ftrace holds no pointer to
            // it, since registering failed (and cleaned up after itself).
            drop(unsafe { KBox::from_raw(ops) });
            return Err(e);
        }
        // SAFETY: not yet published: only we access it.
        unsafe { (*ops).data().next.store(TABLE.load(Relaxed), Relaxed) };
        TABLE.store(ops, Release);
        Ok(())
    }

    /// Unregisters `ops`, takes its last function off, unlinks it from the
    /// table and frees it after a grace period (`klp_unpatch_func()` on the
    /// last function).
    fn retire(ops: &KlpOps, locked: &Locked, last: &Func) {
        let this = ops.data();
        // SAFETY: registered by `create` on `loc`; unregistering waits for
        // running handlers of this ops to finish.
        let (unreg, filter) = unsafe { ops.unregister(this.loc) };
        kernel::warn_on!(unreg.is_err());
        kernel::warn_on!(filter.is_err());
        this.remove(locked, last);
        let target = core::ptr::from_ref(ops).cast_mut();
        let mut link = &TABLE;
        loop {
            let cur = link.load(Relaxed);
            if cur.is_null() {
                kernel::warn_on!(true);
                return;
            }
            if cur == target {
                link.store(this.next.load(Relaxed), Release);
                break;
            }
            // SAFETY: an ops in the table; under `klp_mutex` none leaves it
            // but through here.
            link = unsafe { &(*cur).data().next };
        }
        // SAFETY: allocated by `create` as a `KBox` and leaked into the
        // table, which no longer holds it; unregistered, so ftrace holds it
        // no more either. Only readers that started before may still see it,
        // and `kvfree_rcu` frees it after them.
        rcu::kvfree_rcu(unsafe { KBox::from_raw(target) });
    }
}
