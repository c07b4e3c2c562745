// SPDX-License-Identifier: GPL-2.0

//! The Rust side of `shim.c`: safe wrappers of the functions it defines
//! because only C can (a static key, dynamic-debug lines, a lockdep macro,
//! a per-CPU buffer).

use kernel::ffi::{c_char, c_int, c_ulong, c_void};
use kernel::str::{CStr, CStrExt};
use kernel::task::Task;

extern "C" {
    fn klp_rs_debug_transition(what: c_int, name: *const c_char, target: c_int);
    // The task as `void *`: bindgen's `task_struct` is not FFI-safe.
    fn klp_try_switch_task(task: *mut c_void, ret: c_int, old_name: *const c_char);
    fn klp_rs_set_sched_try_switch(enable: bool);
    #[cfg(CONFIG_PROVE_LOCKING)]
    fn klp_rs_assert_preemption_disabled();
    fn klp_rs_stack_entries(len: *mut u32) -> *mut c_ulong;
}

/// The transition's debug lines, worded as upstream's (`enum klp_rs_debug`
/// in shim.c).
#[derive(Clone, Copy)]
#[repr(i32)]
pub(crate) enum Debug {
    Init = 0,
    Complete = 1,
    Cancel = 2,
    Reverse = 3,
}

/// One of upstream's transition debug lines for patch `name` (off unless
/// dynamic debug enables them).
pub(crate) fn debug_transition(what: Debug, name: &CStr, target: i32) {
    // SAFETY: any `what`, a NUL-terminated name that outlives the call.
    unsafe { klp_rs_debug_transition(what as c_int, name.as_char_ptr(), target) };
}

/// Upstream's debug line on why `task` could not switch: `ret` is
/// `-EBUSY`, `-EINVAL` or `-EADDRINUSE` (with the busy function's name).
pub(crate) fn debug_try_switch(task: &Task, ret: c_int, busy: Option<&CStr>) {
    let name = busy.map_or(core::ptr::null(), CStr::as_char_ptr);
    // SAFETY: the task is alive for `&task`; the name is NULL or
    // NUL-terminated and outlives the call.
    unsafe { klp_try_switch_task(task.as_ptr().cast(), ret, name) };
}

/// Lets the scheduler try to switch tasks that sleep (`cond_resched()`):
/// flips `klp_sched_try_switch_key`. May sleep.
pub(crate) fn set_sched_try_switch(enable: bool) {
    kernel::task::might_sleep();
    // SAFETY: flips a static key, from process context (checked above).
    unsafe { klp_rs_set_sched_try_switch(enable) };
}

/// Lockdep's check that preemption is off (a no-op without lockdep).
#[inline(always)]
pub(crate) fn assert_preemption_disabled() {
    // SAFETY: only reads lockdep's state for this CPU.
    #[cfg(CONFIG_PROVE_LOCKING)]
    unsafe {
        klp_rs_assert_preemption_disabled()
    };
}

/// This CPU's stack trace buffer.
///
/// # Safety
///
/// Preemption is disabled for as long as the buffer is used, and nothing
/// else on this CPU uses it meanwhile (the transition's stack checks run
/// one at a time per CPU, never from interrupts).
pub(crate) unsafe fn stack_entries<'a>() -> &'a mut [c_ulong] {
    let mut len = 0;
    // SAFETY: `len` is valid for writes.
    let entries = unsafe { klp_rs_stack_entries(&mut len) };
    // SAFETY: this CPU's buffer of `len` entries, ours alone while
    // preemption is disabled (the function's contract).
    unsafe { core::slice::from_raw_parts_mut(entries, len as usize) }
}
