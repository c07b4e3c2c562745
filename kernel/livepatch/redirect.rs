// SPDX-License-Identifier: GPL-2.0

//! The redirect: what the ftrace handler of a patched function decides
//! (the `FtraceHandler` of the ops and stacks of [`crate::func_stack`]), and
//! patching and unpatching objects.
//!
//! The handler runs the top of the function's stack, or during a transition
//! the entry below it for tasks not yet switched, by setting the traced
//! call's instruction pointer to the replacement. Patching and unpatching
//! run under `klp_mutex`: they take its guard, [`Locked`], as proof.

use core::sync::atomic::{fence, Ordering::Acquire};

use kernel::ftrace::{FtraceCall, FtraceHandler};
use kernel::prelude::*;
use kernel::sync::rcu;

use crate::func_stack::{self, KlpStack};
use crate::lock::Locked;
use crate::structs::{Func, Object, Patch};
use kernel::livepatch::patch_state::{IDLE, UNPATCHED};

/// Where a task that still runs the previous version of `func`'s target
/// is, for the transition's stack checks: the code of the function below
/// `func` on its stack, or the original code; `(address, size)`.
pub(crate) fn previous_code(rcu: &rcu::Guard, func: &Func) -> (usize, usize) {
    let below = func_stack::find_rcu(rcu, func.old_func()).and_then(|ops| {
        let mut entry = ops.top()?;
        while entry.func() != func {
            entry = entry.below()?;
        }
        entry.below()
    });
    match below {
        Some(prev) => (prev.func().new_func(), prev.func().new_size()),
        None => (func.old_func(), func.old_size()),
    }
}

/// The redirect: which function a call of a patched function runs
/// (`klp_ftrace_handler()`).
impl FtraceHandler for KlpStack {
    /// The top of the stack, or, during a transition, the entry below it
    /// for a task not yet switched (the previous patch's version, or the
    /// original code).
    const MODIFIES_IP: bool = true;

    #[inline(always)]
    fn call(call: &FtraceCall<'_, Self>) {
        let Some(top) = call.data().top() else {
            // Ops exist only with a function on their stack.
            crate::warn_on_once!(true);
            return;
        };
        // Read `transition` only after the stack entry (pairs with the
        // Release of `init_transition` and `complete`).
        fence(Acquire);
        if top.func().in_transition() {
            // Read the task's state only after `transition` (pairs with the
            // Release in `init_transition` and `reverse_transition`).
            fence(Acquire);
            let state = kernel::current!().klp_patch_state();
            crate::warn_on_once!(state == IDLE);
            if state == UNPATCHED {
                if let Some(below) = top.below() {
                    func_stack::redirect(call, &below);
                }
                return;
            }
        }
        func_stack::redirect(call, &top);
    }

    /// The handler never calls what it traces: recursion is a bug.
    #[inline(always)]
    fn recursed() {
        crate::warn_on_once!(true);
    }
}

fn patch_func(locked: &Locked, func: &Func) -> Result {
    if kernel::warn_on!(func.old_func() == 0) || kernel::warn_on!(func.patched()) {
        return Err(EINVAL);
    }
    func_stack::push(locked, func)
}

/// `klp_unpatch_func()`: takes `func` off its stack, retiring the handler
/// with the last function.
fn unpatch_func(locked: &Locked, func: &Func) {
    if kernel::warn_on!(!func.patched()) || kernel::warn_on!(func.old_func() == 0) {
        return;
    }
    kernel::warn_on!(func_stack::pop(locked, func).is_err());
}

fn unpatch_funcs(locked: &Locked, obj: &Object, nops_only: bool) {
    for func in obj.funcs() {
        if (!nops_only || func.nop()) && func.patched() {
            unpatch_func(locked, func);
        }
    }
    if obj.dynamic() || !nops_only {
        obj.set_patched(locked, false);
    }
}

fn unpatch_objects(locked: &Locked, patch: &Patch, nops_only: bool) {
    for obj in patch.objects().filter(|obj| obj.patched()) {
        unpatch_funcs(locked, obj, nops_only);
    }
}

/// `klp_patch_object()`: redirects every function of `obj`, an object of a
/// registered patch; all or nothing.
pub(crate) fn patch_object(locked: &Locked, obj: &Object) -> Result {
    if kernel::warn_on!(obj.patched()) {
        return Err(EINVAL);
    }
    for func in obj.funcs() {
        if let Err(err) = patch_func(locked, func) {
            unpatch_funcs(locked, obj, false);
            return Err(err);
        }
    }
    obj.set_patched(locked, true);
    Ok(())
}

/// `klp_unpatch_object()`: takes every function of `obj` off its stack.
pub(crate) fn unpatch_object(locked: &Locked, obj: &Object) {
    unpatch_funcs(locked, obj, false);
}

/// `klp_unpatch_objects()`: unpatches every patched object of `patch`.
pub(crate) fn unpatch_all(locked: &Locked, patch: &Patch) {
    unpatch_objects(locked, patch, false);
}

/// `klp_unpatch_objects_dynamic()`: unpatches only the nops (and dynamic
/// objects) of `patch`.
pub(crate) fn unpatch_dynamic(locked: &Locked, patch: &Patch) {
    unpatch_objects(locked, patch, true);
}
