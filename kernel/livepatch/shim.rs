// SPDX-License-Identifier: GPL-2.0

//! The Rust side of `shim.c`: safe wrappers of what it defines because
//! only C can (dynamic-debug lines, a per-CPU buffer, the scheduler's static
//! key), a few C calls the logic makes, and C-only logging.

use kernel::ffi::{c_char, c_int, c_ulong, c_void};
use kernel::static_key::StaticKeyFalse;
use kernel::str::{CStr, CStrExt};
use kernel::task::Task;

extern "C" {
    fn klp_rs_debug_transition(name: *const c_char, what: *const c_char);
    // The task as `void *`: bindgen's `task_struct` is not FFI-safe.
    fn klp_try_switch_task(
        task: *mut c_void,
        ret: c_int,
        why: *const c_char,
        old_name: *const c_char,
    );
    fn klp_rs_stack_entries(len: *mut u32) -> *mut c_ulong;
    /// `DEFINE_STATIC_KEY_FALSE(klp_sched_try_switch_key)` in `shim.c`.
    static klp_sched_try_switch_key: StaticKeyFalse;
}

/// The transition's debug lines, worded as upstream's.
#[derive(Clone, Copy)]
pub(crate) enum Debug {
    Init,
    Complete,
    Cancel,
    Reverse,
}

/// One of upstream's transition debug lines for patch `name` (off unless
/// dynamic debug enables them).
pub(crate) fn debug_transition(what: Debug, name: &CStr, target: i32) {
    let patching = target == kernel::livepatch::patch_state::PATCHED;
    let line = match (what, patching) {
        (Debug::Init, true) => c"initializing patching transition",
        (Debug::Init, false) => c"initializing unpatching transition",
        (Debug::Complete, true) => c"completing patching transition",
        (Debug::Complete, false) => c"completing unpatching transition",
        (Debug::Cancel, _) => c"canceling patching transition, going to unpatch",
        (Debug::Reverse, true) => c"reversing transition from patching to unpatching",
        (Debug::Reverse, false) => c"reversing transition from unpatching to patching",
    };
    // SAFETY: two NUL-terminated strings that outlive the call.
    unsafe { klp_rs_debug_transition(name.as_char_ptr(), line.as_char_ptr()) };
}

/// Upstream's debug line on why `task` could not switch: `ret` is
/// `-EBUSY`, `-EINVAL` or `-EADDRINUSE` (with the busy function's name).
pub(crate) fn debug_try_switch(task: &Task, ret: c_int, busy: Option<&CStr>) {
    use kernel::error::code::{EADDRINUSE, EBUSY, EINVAL};
    let why = match ret {
        r if r == EBUSY.to_errno() => c"is running".as_char_ptr(),
        r if r == EINVAL.to_errno() => c"has an unreliable stack".as_char_ptr(),
        r if r == EADDRINUSE.to_errno() => c"is sleeping on function ".as_char_ptr(),
        _ => core::ptr::null(),
    };
    let name = busy.unwrap_or(c"");
    // SAFETY: the task is alive for `&task`; `why` is NULL or, like the
    // name, NUL-terminated and outlives the call.
    unsafe { klp_try_switch_task(task.as_ptr().cast(), ret, why, name.as_char_ptr()) };
}

/// Lets the scheduler try to switch tasks that sleep (`cond_resched()`):
/// flips `klp_sched_try_switch_key`. May sleep.
pub(crate) fn set_sched_try_switch(enable: bool) {
    // SAFETY: a C static, initialised at compile time, that lives forever.
    let key = unsafe { &klp_sched_try_switch_key };
    if enable {
        key.enable();
    } else {
        key.disable();
    }
}

/// Lockdep's check that preemption is off (a no-op without lockdep).
#[inline(always)]
pub(crate) fn assert_preemption_disabled() {
    // SAFETY: only reads lockdep's state for this CPU.
    #[cfg(CONFIG_PROVE_LOCKING)]
    unsafe {
        kernel::bindings::lockdep_assert_preemption_disabled()
    };
}

/// Preemption disabled (`preempt_disable_notrace()`) until dropped: the
/// proof the per-CPU stack buffer asks for.
pub(crate) struct PreemptDisabled(core::marker::PhantomData<*mut ()>);

impl PreemptDisabled {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        // SAFETY: always allowed; paired with the enable in `drop`.
        unsafe { kernel::bindings::preempt_disable_notrace() };
        PreemptDisabled(core::marker::PhantomData)
    }

    /// This CPU's stack trace buffer, for as long as preemption stays off.
    ///
    /// # Safety
    ///
    /// No other borrow of this CPU's buffer is live: the transition's stack
    /// checks, its only users, do not nest.
    pub(crate) unsafe fn stack_entries(&mut self) -> &mut [c_ulong] {
        let mut len = 0;
        // SAFETY: `len` is valid for writes.
        let entries = unsafe { klp_rs_stack_entries(&mut len) };
        // SAFETY: this CPU's buffer of `len` entries: with preemption off
        // (for the borrow of `self`) no other task uses it on this CPU, and
        // interrupts never do; no other borrow is live (our contract).
        unsafe { core::slice::from_raw_parts_mut(entries, len as usize) }
    }
}

impl Drop for PreemptDisabled {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: paired with the disable in `new`.
        unsafe { kernel::bindings::preempt_enable_notrace() };
    }
}

/// `round_jiffies_relative()`: `delay` rounded so that timers of many
/// CPUs fire together.
pub(crate) fn round_jiffies_relative(delay: c_ulong) -> c_ulong {
    // SAFETY: a pure computation on jiffies.
    unsafe { kernel::bindings::round_jiffies_relative(delay) }
}

/// A shadow variable's constructor, as a livepatch module hands it in
/// (`klp_shadow_ctor_t`), with its `ctor_data`.
///
/// # Invariants
///
/// `f`, if set, is safe to call with an object, the zeroed data of a new
/// variable of it, and `data`.
#[derive(Clone, Copy)]
pub(crate) struct ShadowCtor {
    f: kernel::bindings::klp_shadow_ctor_t,
    data: *mut c_void,
}

impl ShadowCtor {
    /// # Safety
    ///
    /// `f`, if set, is safe to call so (the constructor contract of
    /// `livepatch.h`, which the caller of `klp_shadow_alloc()` accepted).
    pub(crate) unsafe fn new(f: kernel::bindings::klp_shadow_ctor_t, data: *mut c_void) -> Self {
        ShadowCtor { f, data }
    }

    /// Runs the constructor on the new variable `new_data` of `obj`; 0
    /// without one.
    ///
    /// # Safety
    ///
    /// `new_data` is the zeroed data of a new variable of `obj`, not yet
    /// visible to anyone else.
    pub(crate) unsafe fn call(&self, obj: *mut c_void, new_data: *mut c_void) -> c_int {
        match self.f {
            // SAFETY: (type invariant, and our contract).
            Some(f) => unsafe { f(obj, new_data, self.data) },
            None => 0,
        }
    }
}

/// A shadow variable's destructor, as a livepatch module hands it in
/// (`klp_shadow_dtor_t`).
///
/// # Invariants
///
/// Safe to call with the object and the data of a variable being freed.
#[derive(Clone, Copy)]
pub(crate) struct ShadowDtor(kernel::bindings::klp_shadow_dtor_t);

impl ShadowDtor {
    /// # Safety
    ///
    /// `f`, if set, is safe to call so (the destructor contract of
    /// `livepatch.h`, which the caller of `klp_shadow_free()` accepted).
    pub(crate) unsafe fn new(f: kernel::bindings::klp_shadow_dtor_t) -> Self {
        ShadowDtor(f)
    }

    /// Runs the destructor, if any, on `data`, the data of `obj`'s variable
    /// being freed.
    ///
    /// # Safety
    ///
    /// `data` is the data of `obj`'s variable, unlinked and being freed.
    pub(crate) unsafe fn call(&self, obj: *mut c_void, data: *mut c_void) {
        if let Some(f) = self.0 {
            // SAFETY: (type invariant, and our contract).
            unsafe { f(obj, data) }
        }
    }
}

/// Logs a failed shadow constructor with the pointer hashed as C's `%p` does
/// (Rust's `{:p}` would print the raw kernel address).
pub(crate) fn log_shadow_ctor_failure(obj: *mut c_void, id: c_ulong, err: c_int) {
    // SAFETY: a NUL-terminated format whose conversions match the arguments:
    // %p a pointer (only printed, never dereferenced), %lx an unsigned long,
    // %d an int.
    unsafe {
        kernel::bindings::_printk(
            c"\x013livepatch: Failed to construct shadow variable <%p, %lx> (%d)\n".as_char_ptr(),
            obj,
            id,
            err,
        )
    };
}

/// `WARN(1, "Duplicate shadow variable <%p, %lx>\n", obj, id)` as upstream:
/// the message inside the cut-here block, the pointer hashed.
pub(crate) fn warn_shadow_duplicate(obj: *mut c_void, id: c_ulong) {
    // SAFETY: a NUL-terminated format whose conversions match the arguments:
    // %p a pointer (only printed), %lx an unsigned long.
    unsafe {
        kernel::bindings::__warn_printk(
            c"Duplicate shadow variable <%p, %lx>\n".as_char_ptr(),
            obj,
            id,
        )
    };
    kernel::warn_flags!(
        file!(),
        kernel::bindings::BUGFLAG_NO_CUT_HERE
            | kernel::bug::bugflag_taint(kernel::bindings::TAINT_WARN)
    );
}
