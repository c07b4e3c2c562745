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

use crate::func_stack::{self, Redirects};
use crate::lock::Locked;
use crate::structs::{Func, Object, Patch};
use kernel::livepatch::patch_state::{IDLE, UNPATCHED};

/// Where a task that still runs the previous version of `func`'s target
/// is, for the transition's stack checks: the code of the function below
/// `func` on its stack, or the original code; `(address, size)`.
pub(crate) fn previous_code(rcu: &rcu::Guard, func: &Func) -> (usize, usize) {
    let below = func_stack::find_rcu(rcu, func.old_func()).and_then(|stack| {
        let mut entry = stack.top()?;
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
impl FtraceHandler for Redirects {
    /// The top of the stack of the traced function, or, during a
    /// transition, the entry below it for a task not yet switched (the
    /// previous patch's version, or the original code).
    const MODIFIES_IP: bool = true;

    #[inline(always)]
    fn call(call: &FtraceCall<'_, Self>) {
        // None: the function was unpatched after the call entered ftrace,
        // and runs its original code.
        let Some(stack) = func_stack::traced_stack(call) else {
            return;
        };
        let Some(top) = stack.top() else {
            // A stack is in the table only with a function on it.
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

/// Takes the patched functions of `obj` off their stacks (only the nops
/// with `nops_only`), in one batch.
fn unpatch_funcs(locked: &Locked, obj: &Object, nops_only: bool) {
    func_stack::pop_all(
        locked,
        obj.funcs()
            .filter(|func| (!nops_only || func.nop()) && func.patched()),
    );
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
/// registered patch, with one ftrace update; all or nothing.
pub(crate) fn patch_object(locked: &Locked, obj: &Object) -> Result {
    if kernel::warn_on!(obj.patched()) {
        return Err(EINVAL);
    }
    func_stack::push_all(locked, || obj.funcs())?;
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
