// SPDX-License-Identifier: GPL-2.0

//! The redirect: one ftrace handler per patched function (`klp_ops`), with
//! the `func_stack` of the `klp_func`s that replace it.
//!
//! The handler picks the top of the stack, or during a transition the entry
//! below it for tasks not yet switched, and rewrites the return address of
//! the ftrace call so the traced function continues in the replacement.
//! Patching and unpatching run under `klp_mutex`: they take its guard,
//! [`Locked`], as proof.

use core::ptr::{addr_of, NonNull};
use core::sync::atomic::{
    fence, AtomicPtr, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

use kernel::bindings;
use kernel::ffi::c_ulong;
use kernel::prelude::*;
use kernel::types::Opaque;

use crate::arch;
use crate::cview::{FuncRef, ObjRef, PatchRef};
use crate::ftrace::{self, RegisterError};
use crate::func_stack::FuncStack;
use crate::lock::Locked;
use kernel::livepatch::patch_state::{IDLE, UNPATCHED};

/// The ftrace registration shared by every `klp_func` that patches one
/// function.
///
/// # Invariants
///
/// Allocated by [`KlpOps::create`]; `fops` is registered on `loc` with
/// [`klp_ftrace_handler`] for as long as the ops is on the registry, and
/// `stack` holds at least one function meanwhile.
#[repr(C)]
struct KlpOps {
    /// First, so the handler gets from the `ftrace_ops` to its `KlpOps` by a
    /// cast.
    fops: Opaque<bindings::ftrace_ops>,
    stack: FuncStack,
    old_func: usize,
    loc: usize,
    /// Registry link: written under `klp_mutex`, read without it by the
    /// stack checks, so retired entries are freed after a grace period.
    next: AtomicPtr<KlpOps>,
    rcu: Opaque<bindings::kvfree_rcu_head>,
}

// `kvfree_call_rcu` finds the object from its rcu head only within the
// first page (the non-batched path).
const _: () = assert!(core::mem::offset_of!(KlpOps, rcu) < 4096);

/// The registry of [`KlpOps`], newest first.
static REGISTRY: AtomicPtr<KlpOps> = AtomicPtr::new(core::ptr::null_mut());

/// The ops redirecting `old_func`, if any: `klp_find_ops()`.
///
/// # Safety
///
/// For `'a`, the caller holds `klp_mutex` (the registry changes only under
/// it), or runs with preemption disabled: a retired entry is freed only a
/// grace period after it was unlinked (see [`KlpOps::retire`]).
unsafe fn find_ops<'a>(old_func: usize) -> Option<&'a KlpOps> {
    let mut cur = REGISTRY.load(Acquire);
    while let Some(ptr) = NonNull::new(cur) {
        // SAFETY: registry entries are live `KlpOps` while listed, and stay
        // allocated for `'a` after being unlinked (caller's contract).
        let ops = unsafe { ptr.as_ref() };
        if ops.old_func == old_func {
            return Some(ops);
        }
        cur = ops.next.load(Acquire);
    }
    None
}

/// [`find_ops`] for a holder of `klp_mutex`.
fn find_ops_locked(_locked: &Locked, old_func: usize) -> Option<&KlpOps> {
    // SAFETY: we hold `klp_mutex` for the guard's borrow.
    unsafe { find_ops(old_func) }
}

/// Where the stack checks look for `func` being busy: the code a task not
/// yet switched may be running instead of `func`, as `(address, size)`.
/// That is the function below `func` on its stack, or the original.
///
/// # Safety
///
/// The caller runs with preemption disabled (or holds `klp_mutex`), and
/// `func` belongs to the patch in transition.
pub(crate) unsafe fn previous_code(func: FuncRef) -> (usize, usize) {
    // SAFETY: preemption is disabled, or we hold the mutex, for this call
    // (caller's contract); nothing of the ops outlives it.
    let ops = unsafe { find_ops(func.old_func()) };
    // SAFETY: the functions of the patch in transition are patched, so on
    // the stack of the ops for their function.
    let prev = ops.and_then(|ops| unsafe { ops.stack.below(func) });
    match prev {
        Some(prev) => (prev.new_func(), prev.new_size()),
        None => (func.old_func(), func.old_size()),
    }
}

/// Runs at the `__fentry__` call of every patched function.
///
/// # Safety
///
/// Called by ftrace only, through a [`KlpOps::fops`] registered by
/// [`patch_func`], with the live `ftrace_regs` of the traced call.
unsafe extern "C" fn klp_ftrace_handler(
    ip: c_ulong,
    parent_ip: c_ulong,
    fops: *mut bindings::ftrace_ops,
    fregs: *mut bindings::ftrace_regs,
) {
    // Also disables preemption, which `transition::sync_all_cpus` waits for
    // before a removed function can be forgotten.
    let locked = ftrace::with_recursion_lock(ip, parent_ip, || {
        // SAFETY: `fops` is the first member of a live `KlpOps` (the handler
        // is only registered on those, and ftrace stops calling it before
        // the ops is freed); `fregs` is this call's frame.
        unsafe { redirect(&*fops.cast::<KlpOps>(), fregs) }
    });
    crate::warn_on_once!(locked.is_none());
}

/// The handler's body, under the recursion lock.
///
/// # Safety
///
/// `fregs` is the live frame of the traced call that `ops` intercepted.
#[inline(always)]
unsafe fn redirect(ops: &KlpOps, fregs: *mut bindings::ftrace_regs) {
    // Never empty while registered: unregistering waits for running
    // handlers before the last function comes off the stack.
    let Some(mut func) = ops.stack.top() else {
        crate::warn_on_once!(true);
        return;
    };
    // Read `func->transition` after the stack top: the enable path sets
    // `transition` before it pushes (write barrier in `__klp_enable_patch`).
    fence(Acquire);
    if func.in_transition() {
        // And the task's state after `transition`: `klp_init_transition`
        // writes them in the opposite order, with a write barrier.
        fence(Acquire);
        let state = kernel::current!().klp_patch_state();
        crate::warn_on_once!(state == IDLE);
        if state == UNPATCHED {
            // Not switched yet: the previous version, or the original code.
            // SAFETY: `func` is this stack's top.
            match unsafe { ops.stack.below(func) } {
                Some(prev) => func = prev,
                None => return,
            }
        }
    }
    // A nop stands for the original code: redirecting would loop forever.
    if func.nop() {
        return;
    }
    // SAFETY: `fregs` is this call's live frame (caller's contract).
    unsafe { arch::set_instruction_pointer(fregs, func.new_func()) };
}

impl KlpOps {
    /// Registers a new ops redirecting `func.old_func()` to `func`.
    fn create(_locked: &Locked, func: FuncRef) -> Result {
        let Some(loc) = arch::fentry_location(func.old_func()) else {
            pr_err!(
                "failed to find location for function '{}'\n",
                func.old_name()
            );
            return Err(EINVAL);
        };
        let ops = KBox::new(
            KlpOps {
                fops: Opaque::zeroed(),
                stack: FuncStack::new(),
                old_func: func.old_func(),
                loc,
                next: AtomicPtr::new(core::ptr::null_mut()),
                rcu: Opaque::zeroed(),
            },
            GFP_KERNEL,
        )?;
        ops.stack.init();
        // SAFETY: we hold `klp_mutex` (the guard); `func` is unpatched, hence
        // on no stack.
        unsafe { ops.stack.push(func) };
        // The ops must not move once ftrace links it.
        let ops = KBox::into_raw(ops);
        // SAFETY: `fops` is zeroed and stays put until freed in `retire` or
        // below.
        let registered = unsafe { ftrace::register((*ops).fops.get(), loc, klp_ftrace_handler) };
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
            // SAFETY: never registered nor published: still only ours.
            drop(unsafe { KBox::from_raw(ops) });
            return Err(e);
        }
        // SAFETY: `ops` is live; publishing it is serialized by `klp_mutex`.
        unsafe { (*ops).next.store(REGISTRY.load(Relaxed), Relaxed) };
        REGISTRY.store(ops, Release);
        Ok(())
    }

    /// Unregisters the ops, takes it off the registry and frees it once no
    /// reader can hold it.
    ///
    /// # Safety
    ///
    /// The caller holds `klp_mutex`; `ops` is on the registry and `last` is
    /// its only function.
    unsafe fn retire(ops: &KlpOps, last: FuncRef) {
        // SAFETY: registered on `loc` (type invariant).
        let (unreg, filter) = unsafe { ftrace::unregister(ops.fops.get(), ops.loc) };
        kernel::warn_on!(unreg.is_err());
        kernel::warn_on!(filter.is_err());
        // SAFETY: mutex held (caller's contract) and `last` is on the stack.
        unsafe { ops.stack.remove(last) };
        let target = core::ptr::from_ref(ops).cast_mut();
        let mut link = &REGISTRY;
        loop {
            let cur = link.load(Relaxed);
            if cur.is_null() {
                kernel::warn_on!(true);
                return;
            }
            if cur == target {
                link.store(ops.next.load(Relaxed), Release);
                break;
            }
            // SAFETY: registry entries are live while we hold the mutex.
            link = unsafe { &(*cur).next };
        }
        // SAFETY: unlinked above; lockless readers (stack checks with
        // preemption off) may still hold it until a grace period passes,
        // which `kvfree_call_rcu` waits for. It came from `KBox` (kmalloc),
        // which kvfree frees, and its rcu head is used only here.
        unsafe { bindings::kvfree_call_rcu(Opaque::cast_into(addr_of!(ops.rcu)), target.cast()) };
    }
}

/// `klp_patch_func()`: puts `func` on top of the stack of its function,
/// registering the ftrace handler first when it is the first.
fn patch_func(locked: &Locked, func: FuncRef) -> Result {
    if kernel::warn_on!(func.old_func() == 0) || kernel::warn_on!(func.patched()) {
        return Err(EINVAL);
    }
    match find_ops_locked(locked, func.old_func()) {
        // SAFETY: mutex held; an unpatched func is on no stack.
        Some(ops) => unsafe { ops.stack.push(func) },
        None => KlpOps::create(locked, func)?,
    }
    func.set_patched(true);
    Ok(())
}

/// `klp_unpatch_func()`: takes `func` off its stack, retiring the handler
/// with the last function.
fn unpatch_func(locked: &Locked, func: FuncRef) {
    if kernel::warn_on!(!func.patched()) || kernel::warn_on!(func.old_func() == 0) {
        return;
    }
    let Some(ops) = find_ops_locked(locked, func.old_func()) else {
        kernel::warn_on!(true);
        return;
    };
    if ops.stack.is_singular() {
        // SAFETY: mutex held; the stack holds only `func`.
        unsafe { KlpOps::retire(ops, func) };
    } else {
        // SAFETY: mutex held; `func` is patched, so on this stack.
        unsafe { ops.stack.remove(func) };
    }
    func.set_patched(false);
}

fn unpatch_funcs(locked: &Locked, obj: ObjRef, nops_only: bool) {
    for func in obj.funcs() {
        if (!nops_only || func.nop()) && func.patched() {
            unpatch_func(locked, func);
        }
    }
    if obj.dynamic() || !nops_only {
        obj.set_patched(false);
    }
}

fn unpatch_objects(locked: &Locked, patch: PatchRef, nops_only: bool) {
    for obj in patch.objects().filter(|obj| obj.patched()) {
        unpatch_funcs(locked, obj, nops_only);
    }
}

/// `klp_patch_object()`: redirects every function of `obj`, an object of a
/// registered patch; all or nothing.
pub(crate) fn patch_object(locked: &Locked, obj: ObjRef) -> Result {
    if kernel::warn_on!(obj.patched()) {
        return Err(EINVAL);
    }
    for func in obj.funcs() {
        if let Err(err) = patch_func(locked, func) {
            unpatch_funcs(locked, obj, false);
            return Err(err);
        }
    }
    obj.set_patched(true);
    Ok(())
}

/// `klp_unpatch_object()`: takes every function of `obj` off its stack.
pub(crate) fn unpatch_object(locked: &Locked, obj: ObjRef) {
    unpatch_funcs(locked, obj, false);
}

/// `klp_unpatch_objects()`: unpatches every patched object of `patch`.
pub(crate) fn unpatch_all(locked: &Locked, patch: PatchRef) {
    unpatch_objects(locked, patch, false);
}

/// `klp_unpatch_objects_dynamic()`: unpatches only the nops (and dynamic
/// objects) of `patch`.
pub(crate) fn unpatch_dynamic(locked: &Locked, patch: PatchRef) {
    unpatch_objects(locked, patch, true);
}
