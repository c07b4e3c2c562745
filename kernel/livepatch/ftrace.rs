// SPDX-License-Identifier: GPL-2.0

//! A small ftrace abstraction: registering one `ftrace_ops` on one function,
//! and the function-recursion lock every ftrace handler takes.
//!
//! The recursion lock is C's `ftrace_test_recursion_trylock()`, an inline
//! function, reached through `rust/helpers/ftrace.c`; with
//! `CONFIG_RUST_INLINE_HELPERS` it is inlined into the handler.

use kernel::bindings;
use kernel::error::{to_result, Result};
use kernel::ffi::c_ulong;

/// The C signature of an ftrace handler.
pub(crate) type Handler = unsafe extern "C" fn(
    ip: c_ulong,
    parent_ip: c_ulong,
    ops: *mut bindings::ftrace_ops,
    fregs: *mut bindings::ftrace_regs,
);

/// Which step of [`register`] failed.
pub(crate) enum RegisterError {
    Filter(kernel::error::Error),
    Register(kernel::error::Error),
}

/// Points `ops` at `handler` for the one function whose ftrace location is
/// `loc`, with the right to change the instruction pointer, and enables it.
/// On failure nothing stays registered or filtered.
///
/// # Safety
///
/// `ops` is zeroed or was unregistered with [`unregister`], and stays at the
/// same address until [`unregister`] returns (ftrace links it into its lists).
pub(crate) unsafe fn register(
    ops: *mut bindings::ftrace_ops,
    loc: usize,
    handler: Handler,
) -> core::result::Result<(), RegisterError> {
    // SAFETY: `ops` is ours and not registered (caller's contract).
    unsafe {
        (*ops).func = Some(handler);
        (*ops).flags = (bindings::FTRACE_OPS_FL_DYNAMIC
            | bindings::FTRACE_OPS_FL_IPMODIFY
            | bindings::FTRACE_OPS_FL_PERMANENT) as c_ulong;
        // Without ftrace_regs the handler needs the full pt_regs saved.
        #[cfg(not(CONFIG_HAVE_DYNAMIC_FTRACE_WITH_ARGS))]
        {
            (*ops).flags |= bindings::FTRACE_OPS_FL_SAVE_REGS as c_ulong;
        }
    }
    // SAFETY: `ops` is valid and pinned (caller's contract).
    to_result(unsafe { bindings::ftrace_set_filter_ip(ops, loc as c_ulong, 0, 0) })
        .map_err(RegisterError::Filter)?;
    // SAFETY: as above; the filter now holds exactly `loc`.
    if let Err(err) = to_result(unsafe { bindings::register_ftrace_function(ops) }) {
        // SAFETY: removes the filter entry added above.
        unsafe { bindings::ftrace_set_filter_ip(ops, loc as c_ulong, 1, 0) };
        return Err(RegisterError::Register(err));
    }
    Ok(())
}

/// Disables `ops` and drops its filter on `loc`. When this returns, no CPU
/// runs the handler through `ops` any more (ftrace waits for that, for
/// dynamic ops), so the memory may be reused. Returns the two C results.
///
/// # Safety
///
/// `ops` was set up by a successful [`register`] on `loc`.
pub(crate) unsafe fn unregister(ops: *mut bindings::ftrace_ops, loc: usize) -> (Result, Result) {
    // SAFETY: registered (caller's contract).
    let unreg = to_result(unsafe { bindings::unregister_ftrace_function(ops) });
    // SAFETY: `loc` is in the filter (caller's contract).
    let filter = to_result(unsafe { bindings::ftrace_set_filter_ip(ops, loc as c_ulong, 1, 0) });
    (unreg, filter)
}

/// Runs `f` under the function tracer's recursion lock for the current
/// context, with preemption disabled (the livepatch handler relies on that,
/// see `transition::sync_all_cpus`): `ftrace_test_recursion_trylock()` and
/// `_unlock()`. Returns `None`, without running `f`, on recursion.
///
/// A closure rather than a guard with `Drop`: the drop glue of a guard is
/// not always inlined at the kernel's size optimisation, and a call per
/// traced call is what the inline helpers are there to avoid.
#[inline(always)]
pub(crate) fn with_recursion_lock<R>(
    ip: c_ulong,
    parent_ip: c_ulong,
    f: impl FnOnce() -> R,
) -> Option<R> {
    // SAFETY: no precondition; on success it disabled preemption and took
    // the recursion bit it returns, for this context of the current task.
    let bit = unsafe { bindings::ftrace_test_recursion_trylock(ip, parent_ip) };
    if bit < 0 {
        return None;
    }
    let ret = f();
    // SAFETY: releases the bit the trylock above returned, on the same CPU
    // (preemption stayed disabled since).
    unsafe { bindings::ftrace_test_recursion_unlock(bit) };
    Some(ret)
}
