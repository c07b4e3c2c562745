// SPDX-License-Identifier: GPL-2.0

//! A small ftrace abstraction: registering one `ftrace_ops` on one function,
//! and the function-recursion lock every ftrace handler takes.
//!
//! The recursion lock is C's `ftrace_test_recursion_trylock()`, an inline
//! function built from `current->trace_recursion` and the preempt count. It
//! is written out here (with the x86 per-CPU reads of [`crate::arch`]) so
//! that the handler makes no out-of-line call: rustc cannot inline the C.

use kernel::bindings;
use kernel::error::{to_result, Result};
use kernel::ffi::c_ulong;

use crate::arch;

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

// `trace_recursion` bits (include/linux/trace_recursion.h): the function
// tracer's four context bits start at 0, the transition bit follows them.
const FTRACE_START: u32 = 0;
const CTX_NORMAL: u32 = 3;
const CTX_TRANSITION: u32 = 4;
#[cfg(CONFIG_FTRACE_RECORD_RECURSION)]
const RECORD_RECURSION_BIT: u32 = 17;

const NMI_BITS: u32 = if cfg!(CONFIG_HAS_SEPARATE_PREEMPT_RESCHED_BITS) {
    4
} else {
    1
};
const HARDIRQ_MASK: u32 = ((1 << bindings::HARDIRQ_BITS) - 1) << bindings::HARDIRQ_SHIFT;
const NMI_MASK: u32 = ((1 << NMI_BITS) - 1) << bindings::NMI_SHIFT;

/// `interrupt_context_level()`: 0 task, 1 softirq, 2 hardirq, 3 NMI.
#[inline(always)]
fn interrupt_context_level() -> u32 {
    let pc = arch::preempt_count();
    u32::from(pc & NMI_MASK != 0)
        + u32::from(pc & (NMI_MASK | HARDIRQ_MASK) != 0)
        + u32::from(pc & (NMI_MASK | HARDIRQ_MASK | bindings::SOFTIRQ_OFFSET) != 0)
}

/// Runs `f` under the function tracer's recursion lock for the current
/// context, with preemption disabled (the livepatch handler relies on that,
/// see `tasks::sync_all_cpus`): `ftrace_test_recursion_trylock()` and
/// `_unlock()`. Returns `None`, without running `f`, on recursion.
///
/// A closure rather than a guard with `Drop`: the drop glue of a guard is
/// not inlined at the kernel's size optimisation, and a call per traced
/// call is what this file exists to avoid.
#[inline(always)]
pub(crate) fn with_recursion_lock<R>(
    _ip: c_ulong,
    _parent_ip: c_ulong,
    f: impl FnOnce() -> R,
) -> Option<R> {
    let word = recursion_word();
    // SAFETY: `word` is current's own field (see `recursion_word`); an
    // interrupt on this CPU may change it and restore it before we resume,
    // so a volatile access, as C's READ_ONCE, suffices.
    let val = unsafe { core::ptr::read_volatile(word) } as u32;

    #[cfg(CONFIG_FTRACE_VALIDATE_RCU_IS_WATCHING)]
    {
        // SAFETY: no preconditions.
        if !unsafe { bindings::rcu_is_watching() } {
            return None;
        }
    }

    let mut bit = CTX_NORMAL - interrupt_context_level() + FTRACE_START;
    if val & (1 << bit) != 0 {
        // An interrupt that traced before updating the preempt count looks
        // like recursion; one such level is allowed through.
        bit = CTX_TRANSITION + FTRACE_START;
        if val & (1 << bit) != 0 {
            #[cfg(CONFIG_FTRACE_RECORD_RECURSION)]
            record_recursion(word, val, _ip, _parent_ip);
            return None;
        }
    }
    // SAFETY: as above; C stores the int back (zero-extended).
    unsafe { core::ptr::write_volatile(word, (val | (1 << bit)) as c_ulong) };
    // SAFETY: paired with the enable below.
    unsafe { arch::preempt_disable() };

    let ret = f();

    // SAFETY: undoes the disable above.
    unsafe { arch::preempt_enable_notrace() };
    // SAFETY: current's own word, as above.
    unsafe { core::ptr::write_volatile(word, core::ptr::read_volatile(word) & !(1 << bit)) };
    Some(ret)
}

/// `&current->trace_recursion`.
#[inline(always)]
fn recursion_word() -> *mut c_ulong {
    // SAFETY: `current` is alive while it runs, and the offset is C's
    // (bindgen's `task_struct` is not, see `layout`); only `current` touches
    // its own `trace_recursion`.
    unsafe {
        arch::current()
            .byte_add(crate::layout::c().task_trace_recursion)
            .cast()
    }
}

#[cfg(CONFIG_FTRACE_RECORD_RECURSION)]
#[cold]
fn record_recursion(word: *mut c_ulong, val: u32, ip: c_ulong, parent_ip: c_ulong) {
    if val & (1 << RECORD_RECURSION_BIT) == 0 {
        // SAFETY: current's own word, as in `with_recursion_lock`; the
        // recorder is an ordinary function taking any addresses.
        unsafe {
            core::ptr::write_volatile(word, *word | (1 << RECORD_RECURSION_BIT));
            bindings::ftrace_record_recursion(ip, parent_ip);
            core::ptr::write_volatile(word, *word & !(1 << RECORD_RECURSION_BIT));
        }
    }
}
