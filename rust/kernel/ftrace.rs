// SPDX-License-Identifier: GPL-2.0

//! Function tracing: an `ftrace_ops` that calls a Rust handler for the
//! calls of a set of traced functions, under the function tracer's
//! recursion lock.
//!
//! C header: [`include/linux/ftrace.h`](srctree/include/linux/ftrace.h).

use crate::{
    bindings,
    error::{to_result, Error},
    ffi::c_ulong,
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
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
    /// `ftrace_set_filter_ips()`: a location is not traceable, or no
    /// memory.
    Filter(Error),
    /// `register_ftrace_function()`.
    Register(Error),
}

/// An `ftrace_ops` for a set of traced locations, with the handler's data.
///
/// One ops may trace many functions: its filter changes in one ftrace
/// update for any number of locations ([`FtraceOps::add_locations`],
/// [`FtraceOps::remove_locations`]), where one ops per function costs an
/// update, and on removal a synchronisation, per function. The handler
/// tells the functions apart by [`FtraceCall::ip`].
///
/// # Invariants
///
/// `ops` is the first member, so ftrace's `ops` argument is the
/// `FtraceOps<T>`; it is registered only through [`FtraceOps::register`],
/// whose contract keeps it in place until [`FtraceOps::unregister`] (which
/// is why the type needs no pinning of its own). `locations` counts the
/// locations in its filter, which is never empty while it is registered
/// (an empty filter would trace every function).
#[repr(C)]
pub struct FtraceOps<T: FtraceHandler> {
    ops: Opaque<bindings::ftrace_ops>,
    locations: Atomic<usize>,
    data: T,
}

// SAFETY: ftrace reads the ops from any CPU, and the methods that change it
// are `unsafe` with a contract that serialises them; `data` is `Sync`
// (`FtraceHandler: Sync`), and `locations` atomic.
unsafe impl<T: FtraceHandler> Sync for FtraceOps<T> {}
// SAFETY: nothing in the ops belongs to a thread; moving one is allowed
// whenever it is not registered (`register`'s contract).
unsafe impl<T: FtraceHandler + Send> Send for FtraceOps<T> {}

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

/// `ftrace_set_filter_ips()` on `ops`, for `locs`.
///
/// # Safety
///
/// `ops` is a valid ops that stays in place during the call, and no other
/// filter change of it runs at the same time.
unsafe fn set_filter(
    ops: *mut bindings::ftrace_ops,
    locs: &[usize],
    remove: bool,
    reset: bool,
) -> Result {
    let count = u32::try_from(locs.len()).map_err(|_| EINVAL)?;
    // SAFETY: valid (caller's contract); `locs` is read, never written,
    // despite the C prototype's non-const pointer, and `usize` is `unsigned
    // long` on every architecture the kernel builds Rust for.
    to_result(unsafe {
        bindings::ftrace_set_filter_ips(
            ops,
            locs.as_ptr().cast::<c_ulong>().cast_mut(),
            count,
            remove.into(),
            reset.into(),
        )
    })
}

impl<T: FtraceHandler> FtraceOps<T> {
    /// An ops not registered yet.
    pub const fn new(data: T) -> Self {
        FtraceOps {
            ops: Opaque::zeroed(),
            locations: Atomic::new(0),
            data,
        }
    }

    /// The handler's data.
    #[inline(always)]
    pub fn data(&self) -> &T {
        &self.data
    }

    /// Whether the ops is registered: its filter holds a location.
    pub fn is_registered(&self) -> bool {
        self.locations.load(Relaxed) != 0
    }

    /// How many locations its filter holds (0: not registered).
    pub fn location_count(&self) -> usize {
        self.locations.load(Relaxed)
    }

    /// Points the ops at [`FtraceHandler::call`] for the functions whose
    /// ftrace locations are `locs` (its filter is reset to them), and
    /// enables it. On failure nothing stays registered or filtered.
    ///
    /// # Safety
    ///
    /// - The ops is not registered, and stays at its address until
    ///   [`FtraceOps::unregister`] returns (ftrace links it into its
    ///   lists); it is heap memory or lives forever (it is marked dynamic).
    /// - `locs` are pairwise distinct.
    /// - No other method of this ops that takes `&self` and is `unsafe` runs
    ///   at the same time.
    pub unsafe fn register(
        &self,
        locs: &[usize],
        flags: Flags,
    ) -> core::result::Result<(), RegisterError> {
        if locs.is_empty() {
            // An empty filter traces every function.
            return Err(RegisterError::Filter(EINVAL));
        }
        let ops = self.ops.get();
        // SAFETY: ours and not registered (the function's contract). The
        // flags are or-ed in: ftrace keeps its own (`INITIALIZED`) there.
        unsafe {
            (*ops).func = Some(trampoline::<T>);
            (*ops).flags |= bindings::FTRACE_OPS_FL_DYNAMIC as c_ulong | flags.0;
            if T::MODIFIES_IP {
                (*ops).flags |= bindings::FTRACE_OPS_FL_IPMODIFY as c_ulong;
            }
            // Without ftrace_regs the handler needs the full pt_regs saved.
            #[cfg(not(CONFIG_HAVE_DYNAMIC_FTRACE_WITH_ARGS))]
            {
                (*ops).flags |= bindings::FTRACE_OPS_FL_SAVE_REGS as c_ulong;
            }
        }
        // SAFETY: valid and in place, changes serialised (the function's
        // contract). The reset drops whatever an earlier failed removal may
        // have left in the filter.
        unsafe { set_filter(ops, locs, false, true) }.map_err(RegisterError::Filter)?;
        // SAFETY: as above; the filter now holds exactly `locs`.
        if let Err(err) = to_result(unsafe { bindings::register_ftrace_function(ops) }) {
            // SAFETY: not registered; frees the filter set above.
            unsafe { bindings::ftrace_free_filter(ops) };
            return Err(RegisterError::Register(err));
        }
        self.locations.store(locs.len(), Relaxed);
        Ok(())
    }

    /// Adds `locs` to the filter of the registered ops, in one ftrace
    /// update. All or nothing: on failure (a location not traceable, no
    /// memory, or `EBUSY`: another ops that modifies the instruction
    /// pointer traces one of them) the filter is as it was.
    ///
    /// Unlike [`FtraceOps::register`], this does not ask a direct-call ops
    /// (a BPF trampoline) already on one of `locs` to share it with an ops
    /// that modifies the instruction pointer: ftrace does that only when an
    /// ops is registered. Such handlers should register a new ops instead.
    ///
    /// # Safety
    ///
    /// The ops is registered; `locs` are pairwise distinct and not in its
    /// filter; no other method of this ops that takes `&self` and is
    /// `unsafe` runs at the same time.
    pub unsafe fn add_locations(&self, locs: &[usize]) -> Result {
        if !self.is_registered() {
            return Err(EINVAL);
        }
        // SAFETY: registered, so valid and in place; serialised (the
        // function's contract).
        unsafe { set_filter(self.ops.get(), locs, false, false) }?;
        self.locations
            .store(self.locations.load(Relaxed) + locs.len(), Relaxed);
        Ok(())
    }

    /// Removes `locs` from the filter of the registered ops, in one ftrace
    /// update; once it returns, no call of those functions enters the
    /// handler through this ops any more, though a handler that entered
    /// before may still run (wait for an RCU grace period to see it out,
    /// the handler runs with preemption disabled). Refused (`EINVAL`) if it
    /// would empty the filter: [`FtraceOps::unregister`] then.
    ///
    /// # Safety
    ///
    /// As for [`FtraceOps::add_locations`], but `locs` are in the filter.
    pub unsafe fn remove_locations(&self, locs: &[usize]) -> Result {
        let count = self.locations.load(Relaxed);
        if count <= locs.len() {
            return Err(EINVAL);
        }
        // SAFETY: registered (it has locations), so valid and in place;
        // serialised (the function's contract).
        unsafe { set_filter(self.ops.get(), locs, true, false) }?;
        self.locations.store(count - locs.len(), Relaxed);
        Ok(())
    }

    /// Disables the ops and empties its filter. When this returns, no CPU
    /// runs the handler through it any more (ftrace waits for that, for
    /// dynamic ops), so its memory may be reused.
    ///
    /// # Safety
    ///
    /// The ops is registered; no other method of this ops that takes
    /// `&self` and is `unsafe` runs at the same time.
    pub unsafe fn unregister(&self) -> Result {
        let ops = self.ops.get();
        // SAFETY: registered (the function's contract).
        let unregistered = to_result(unsafe { bindings::unregister_ftrace_function(ops) });
        if unregistered.is_ok() {
            // SAFETY: no longer registered; frees the filter's memory.
            unsafe { bindings::ftrace_free_filter(ops) };
            self.locations.store(0, Relaxed);
        }
        unregistered
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

    /// Counts the calls of two functions, told apart by their location.
    struct Counter {
        first: usize,
        calls: [Atomic<usize>; 2],
    }

    impl FtraceHandler for Counter {
        fn call(call: &FtraceCall<'_, Self>) {
            let which = usize::from(call.ip() != call.data().first);
            call.data().calls[which].fetch_add(1, Relaxed);
        }
    }

    impl Counter {
        fn seen(&self) -> (usize, usize) {
            (self.calls[0].load(Relaxed), self.calls[1].load(Relaxed))
        }
    }

    /// Traceable C functions with no side effects, for the handler to see:
    /// `kfree(NULL)` and `kvfree(NULL)`.
    fn call_kfree() {
        // SAFETY: freeing NULL does nothing.
        unsafe { bindings::kfree(core::ptr::null()) };
    }

    fn call_kvfree() {
        // SAFETY: freeing NULL does nothing.
        unsafe { bindings::kvfree(core::ptr::null()) };
    }

    #[test]
    fn the_recursion_lock_runs_the_closure() {
        assert_eq!(with_recursion_lock(0, 0, || 7), Some(7));
    }

    #[test]
    fn one_ops_counts_the_calls_of_each_of_its_functions() -> Result {
        let kfree_loc = location(bindings::kfree as *const () as usize).ok_or(ENOENT)?;
        let kvfree_loc = location(bindings::kvfree as *const () as usize).ok_or(ENOENT)?;
        let ops = KBox::new(
            FtraceOps::new(Counter {
                first: kfree_loc,
                calls: [Atomic::new(0), Atomic::new(0)],
            }),
            GFP_KERNEL,
        )?;
        // SAFETY: not registered, a location given once, nothing else uses
        // the ops; in a box that is not moved or dropped before `unregister`
        // below.
        let registered = unsafe { ops.register(&[kfree_loc], Flags::NONE) };
        assert!(registered.is_ok() && ops.is_registered());
        if registered.is_err() {
            return Err(EINVAL);
        }
        call_kfree();
        call_kvfree();
        let (kfree_calls, kvfree_calls) = ops.data().seen();
        assert!(kfree_calls >= 1);

        // SAFETY: registered; `kvfree` is not in the filter yet.
        assert!(unsafe { ops.add_locations(&[kvfree_loc]) }.is_ok());
        call_kvfree();
        assert!(ops.data().seen().1 > kvfree_calls);

        // Emptying the filter is refused; removing one location is not.
        assert_eq!(ops.location_count(), 2);
        // SAFETY: registered; both are in the filter.
        let emptied = unsafe { ops.remove_locations(&[kfree_loc, kvfree_loc]) };
        assert_eq!(emptied, Err(EINVAL));
        // SAFETY: registered; `kfree` is in the filter.
        assert!(unsafe { ops.remove_locations(&[kfree_loc]) }.is_ok());
        assert_eq!(ops.location_count(), 1);
        // A handler that entered for `kfree` on another CPU before the
        // removal may still count once: wait for it.
        crate::sync::rcu::synchronize_rcu();
        let (kfree_calls, kvfree_calls) = ops.data().seen();
        call_kfree();
        call_kvfree();
        let now = ops.data().seen();
        assert_eq!(now.0, kfree_calls);
        assert!(now.1 > kvfree_calls);

        // SAFETY: registered above.
        assert!(unsafe { ops.unregister() }.is_ok());
        assert!(!ops.is_registered());
        let after = ops.data().seen();
        call_kfree();
        call_kvfree();
        assert_eq!(ops.data().seen(), after);
        Ok(())
    }

    #[test]
    fn an_empty_filter_is_refused() {
        let ops = FtraceOps::new(Counter {
            first: 0,
            calls: [Atomic::new(0), Atomic::new(0)],
        });
        // SAFETY: not registered, and stays unregistered: the call refuses.
        let registered = unsafe { ops.register(&[], Flags::NONE) };
        assert!(matches!(registered, Err(RegisterError::Filter(e)) if e == EINVAL));
        assert!(!ops.is_registered());
    }
}
