// SPDX-License-Identifier: GPL-2.0

//! The redirect: what the ftrace handler of a patched function decides
//! ([`Redirect`], for the ops and stacks of [`crate::func_stack`]), and
//! patching and unpatching objects.
//!
//! The handler runs the top of the function's stack, or during a transition
//! the entry below it for tasks not yet switched, by setting the traced
//! call's instruction pointer to the replacement. Patching and unpatching
//! run under `klp_mutex`: they take its guard, [`Locked`], as proof.

use core::sync::atomic::{fence, Ordering::Acquire};

use kernel::prelude::*;
use kernel::sync::rcu;

use crate::arch;
use crate::func_stack::{self, KlpOps, Redirect};
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

/// The redirect: which function a call of a patched function runs.
struct KlpRedirect;

impl Redirect for KlpRedirect {
    /// The top of the stack, or, during a transition, the entry below it
    /// for a task not yet switched (`klp_ftrace_handler()`).
    #[inline(always)]
    fn target(ops: &KlpOps) -> Option<usize> {
        let Some(top) = ops.top() else {
            // Ops exist only with a function on their stack.
            crate::warn_on_once!(true);
            return None;
        };
        let mut func = top.func();
        // Read `transition` only after the stack entry (pairs with the
        // Release of `init_transition` and `complete`).
        fence(Acquire);
        if func.in_transition() {
            // Read the task's state only after `transition` (pairs with the
            // Release in `init_transition` and `reverse_transition`).
            fence(Acquire);
            let state = kernel::current!().klp_patch_state();
            crate::warn_on_once!(state == IDLE);
            if state == UNPATCHED {
                // The previous patch's version, or the original code.
                func = top.below()?.func();
            }
        }
        // A nop runs the original code.
        (!func.nop()).then(|| func.new_func())
    }
}

fn patch_func(locked: &Locked, func: &Func) -> Result {
    if kernel::warn_on!(func.old_func() == 0) || kernel::warn_on!(func.patched()) {
        return Err(EINVAL);
    }
    match func_stack::find(locked, func.old_func()) {
        Some(ops) => ops.push(locked, func),
        None => {
            let Some(loc) = arch::fentry_location(func.old_func()) else {
                pr_err!(
                    "failed to find location for function '{}'\n",
                    func.old_name()
                );
                return Err(EINVAL);
            };
            KlpOps::create::<KlpRedirect>(locked, func, loc)
        }
    }
}

/// `klp_unpatch_func()`: takes `func` off its stack, retiring the handler
/// with the last function.
fn unpatch_func(locked: &Locked, func: &Func) {
    if kernel::warn_on!(!func.patched()) || kernel::warn_on!(func.old_func() == 0) {
        return;
    }
    let Some(ops) = func_stack::find(locked, func.old_func()) else {
        kernel::warn_on!(true);
        return;
    };
    kernel::warn_on!(ops.pop(locked, func).is_err());
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
