// SPDX-License-Identifier: GPL-2.0

//! Function tracing: an `ftrace_ops` that calls a Rust handler for the
//! calls of one traced function, under the function tracer's recursion lock.
//!
//! C header: [`include/linux/ftrace.h`](srctree/include/linux/ftrace.h).

use crate::{
    bindings,
    error::{to_result, Error},
    ffi::c_ulong,
    prelude::*,
    sync::rcu::HasRcuHead,
    types::Opaque,
};

/// One traced call, as ftrace hands it to the handler of an
/// [`FtraceOps<T>`]: the ops' data, where the call came from, and its
/// register frame.
///
/// # Invariants
///
/// Made only by the trampoline of a registered `FtraceOps<T>`, for the call
/// it runs for: `regs` is ftrace's live frame of that call, and `data` that
/// ops' data.
pub struct FtraceCall<'a, T: FtraceHandler> {
    data: &'a T,
    ip: usize,
    parent_ip: usize,
    regs: *mut bindings::ftrace_regs,
}

impl<'a, T: FtraceHandler> FtraceCall<'a, T> {
    /// The data of the ops that traced the call.
    #[inline(always)]
    pub fn data(&self) -> &'a T {
        self.data
    }

    /// The traced function's ftrace location.
    #[inline(always)]
    pub fn ip(&self) -> usize {
        self.ip
    }

    /// Where the traced function was called from.
    #[inline(always)]
    pub fn parent_ip(&self) -> usize {
        self.parent_ip
    }

    /// Makes the traced call continue at `target` instead of in the traced
    /// function's body: `ftrace_regs_set_instruction_pointer()`. Only for
    /// handlers that declare [`FtraceHandler::MODIFIES_IP`] (whose ops are
    /// registered with `FTRACE_OPS_FL_IPMODIFY`); for others it warns and
    /// does nothing.
    ///
    /// # Safety
    ///
    /// `target` is the start of a function that can take over the traced
    /// call: one with the traced function's signature and calling
    /// convention, alive while calls may still land there.
    #[cfg(CONFIG_DYNAMIC_FTRACE_WITH_ARGS)]
    #[inline(always)]
    pub unsafe fn set_instruction_pointer(&self, target: usize) {
        if !T::MODIFIES_IP {
            crate::warn_on!(true);
            return;
        }
        // SAFETY: ftrace's live frame of this call (type invariant), of an
        // ops registered with IPMODIFY; the target is the caller's promise.
        unsafe { bindings::ftrace_regs_set_instruction_pointer(self.regs, target as c_ulong) };
    }
}

/// What runs for every call of the traced function.
pub trait FtraceHandler: Sync + Sized {
    /// Whether the handler redirects calls
    /// ([`FtraceCall::set_instruction_pointer`]): its ops is then registered
    /// with `FTRACE_OPS_FL_IPMODIFY`, which one ops per function may have.
    const MODIFIES_IP: bool = false;

    /// Called under the recursion lock with preemption disabled, from any
    /// context the traced function runs in: must not sleep.
    fn call(call: &FtraceCall<'_, Self>);

    /// Called instead of [`FtraceHandler::call`] when the handler recursed
    /// into itself (the lock refused).
    #[inline(always)]
    fn recursed() {}
}

/// Which step of [`FtraceOps::register`] failed.
#[derive(Debug)]
pub enum RegisterError {
    /// `ftrace_set_filter_ip()`: the location is not traceable, or no
    /// memory.
    Filter(Error),
    /// `register_ftrace_function()`.
    Register(Error),
}

/// An `ftrace_ops` for one traced location, with the handler's data.
///
/// # Invariants
///
/// `ops` is the first member, so ftrace's `ops` argument is the
/// `FtraceOps<T>`; it is registered only through [`FtraceOps::register`],
/// whose contract keeps it in place until [`FtraceOps::unregister`] (which
/// is why the type needs no pinning of its own).
#[repr(C)]
pub struct FtraceOps<T: FtraceHandler> {
    ops: Opaque<bindings::ftrace_ops>,
    data: T,
}

// SAFETY: `data` is a field of `FtraceOps<T>` and `T`'s head a field of
// `data`, so the offsets add up to an `RcuHead` of `Self`; ftrace never
// touches `data`.
unsafe impl<T: FtraceHandler + HasRcuHead> HasRcuHead for FtraceOps<T> {
    const RCU_HEAD_OFFSET: usize = core::mem::offset_of!(FtraceOps<T>, data) + T::RCU_HEAD_OFFSET;
}

/// Options of an [`FtraceOps`].
#[derive(Clone, Copy)]
pub struct Flags(c_ulong);

impl Flags {
    /// None.
    pub const NONE: Flags = Flags(0);
    /// The handler must run even when function tracing is switched off
    /// through sysctl (`FTRACE_OPS_FL_PERMANENT`).
    pub const PERMANENT: Flags = Flags(bindings::FTRACE_OPS_FL_PERMANENT as c_ulong);

    /// Both sets of options.
    pub const fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }
}

impl<T: FtraceHandler> FtraceOps<T> {
    /// An ops not registered yet.
    pub const fn new(data: T) -> Self {
        FtraceOps {
            ops: Opaque::zeroed(),
            data,
        }
    }

    /// The handler's data.
    #[inline(always)]
    pub fn data(&self) -> &T {
        &self.data
    }

    /// Points the ops at [`FtraceHandler::call`] for the one function whose
    /// ftrace location is `loc`, and enables it. On failure nothing stays
    /// registered or filtered.
    ///
    /// # Safety
    ///
    /// The ops is not registered, and stays at its address until
    /// [`FtraceOps::unregister`] returns (ftrace links it into its lists);
    /// it is heap memory or lives forever (it is marked dynamic).
    pub unsafe fn register(
        &self,
        loc: usize,
        flags: Flags,
    ) -> core::result::Result<(), RegisterError> {
        let ops = self.ops.get();
        // SAFETY: ours and not registered (the function's contract).
        unsafe {
            (*ops).func = Some(trampoline::<T>);
            (*ops).flags = bindings::FTRACE_OPS_FL_DYNAMIC as c_ulong | flags.0;
            if T::MODIFIES_IP {
                (*ops).flags |= bindings::FTRACE_OPS_FL_IPMODIFY as c_ulong;
            }
            // Without ftrace_regs the handler needs the full pt_regs saved.
            #[cfg(not(CONFIG_HAVE_DYNAMIC_FTRACE_WITH_ARGS))]
            {
                (*ops).flags |= bindings::FTRACE_OPS_FL_SAVE_REGS as c_ulong;
            }
        }
        // SAFETY: valid and pinned (the function's contract).
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

    /// Disables the ops and drops its filter on `loc`. When this returns,
    /// no CPU runs the handler through it any more (ftrace waits for that,
    /// for dynamic ops), so its memory may be reused. Returns the two C
    /// results.
    ///
    /// # Safety
    ///
    /// The ops was registered on `loc` by a successful
    /// [`FtraceOps::register`].
    pub unsafe fn unregister(&self, loc: usize) -> (Result, Result) {
        let ops = self.ops.get();
        // SAFETY: registered (the function's contract).
        let unreg = to_result(unsafe { bindings::unregister_ftrace_function(ops) });
        // SAFETY: `loc` is in the filter (the function's contract).
        let filter =
            to_result(unsafe { bindings::ftrace_set_filter_ip(ops, loc as c_ulong, 1, 0) });
        (unreg, filter)
    }
}

/// The ftrace location of the function at `addr` (its `__fentry__` call):
/// `ftrace_location()`. `None` if it has none: notrace, inlined, or not a
/// function start.
pub fn location(addr: usize) -> Option<usize> {
    // SAFETY: only looks the address up in ftrace's records; any value is
    // accepted.
    let loc = unsafe { bindings::ftrace_location(addr as c_ulong) };
    (loc != 0).then_some(loc as usize)
}

/// Runs `f` under the function tracer's recursion lock for the current
/// context, with preemption disabled: `ftrace_test_recursion_trylock()`
/// and `_unlock()`. Returns `None`, without running `f`, on recursion.
///
/// A closure rather than a guard with `Drop`: the drop glue of a guard is
/// not always inlined at the kernel's size optimisation, and a call per
/// traced call is what the inline helpers are there to avoid.
#[inline(always)]
pub fn with_recursion_lock<R>(ip: usize, parent_ip: usize, f: impl FnOnce() -> R) -> Option<R> {
    // SAFETY: no precondition; on success it disabled preemption and took
    // the recursion bit it returns, for this context of the current task.
    let bit =
        unsafe { bindings::ftrace_test_recursion_trylock(ip as c_ulong, parent_ip as c_ulong) };
    if bit < 0 {
        return None;
    }
    let ret = f();
    // SAFETY: releases the bit the trylock above returned, on the same CPU
    // (preemption stayed disabled since).
    unsafe { bindings::ftrace_test_recursion_unlock(bit) };
    Some(ret)
}

/// The function ftrace calls for an [`FtraceOps<T>`].
///
/// # Safety
///
/// Called by ftrace with a registered `FtraceOps<T>`'s `ops` (which ftrace
/// keeps alive during the call) and the live register frame of the call.
unsafe extern "C" fn trampoline<T: FtraceHandler>(
    ip: c_ulong,
    parent_ip: c_ulong,
    ops: *mut bindings::ftrace_ops,
    fregs: *mut bindings::ftrace_regs,
) {
    let ran = with_recursion_lock(ip, parent_ip, || {
        // SAFETY: `ops` is the first member of a live `FtraceOps<T>` (type
        // invariant).
        let this = unsafe { &*ops.cast::<FtraceOps<T>>() };
        // INVARIANT: made here, for the call ftrace runs us for.
        T::call(&FtraceCall {
            data: &this.data,
            ip,
            parent_ip,
            regs: fregs,
        });
    });
    if ran.is_none() {
        T::recursed();
    }
}

#[kunit_tests(rust_ftrace)]
mod tests {
    use super::*;
    use crate::sync::atomic::{Atomic, Relaxed};

    struct Counter(Atomic<usize>);

    impl FtraceHandler for Counter {
        fn call(call: &FtraceCall<'_, Self>) {
            call.data().0.fetch_add(1, Relaxed);
        }
    }

    /// A traceable C function with no side effects, for the handler to see:
    /// `kfree(NULL)`.
    fn traced() {
        // SAFETY: freeing NULL does nothing.
        unsafe { bindings::kfree(core::ptr::null()) };
    }

    #[test]
    fn the_recursion_lock_runs_the_closure() {
        assert_eq!(with_recursion_lock(0, 0, || 7), Some(7));
    }

    #[test]
    fn a_handler_counts_the_calls_of_its_function() -> Result {
        let loc = location(bindings::kfree as *const () as usize);
        assert!(loc.is_some());
        let loc = loc.ok_or(ENOENT)?;
        let ops = KBox::new(FtraceOps::new(Counter(Atomic::new(0))), GFP_KERNEL)?;
        // SAFETY: not registered; in a box that is not moved or dropped
        // before `unregister` below.
        let registered = unsafe { ops.register(loc, Flags::NONE) };
        assert!(registered.is_ok());
        if registered.is_err() {
            return Err(EINVAL);
        }
        traced();
        let seen = ops.data().0.load(Relaxed);
        // SAFETY: registered on `loc` above.
        let (unreg, filter) = unsafe { ops.unregister(loc) };
        assert!(unreg.is_ok() && filter.is_ok());
        assert!(seen >= 1);
        let after = ops.data().0.load(Relaxed);
        traced();
        assert_eq!(ops.data().0.load(Relaxed), after);
        Ok(())
    }
}
