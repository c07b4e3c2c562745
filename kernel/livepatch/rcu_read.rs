// SPDX-License-Identifier: GPL-2.0

//! An RCU read-side guard for the `klp_shadow_get` hot path.
//!
//! [`kernel::sync::rcu::Guard`] calls out-of-line C helpers: rustc cannot
//! inline C (its LLVM is not clang's), so every lookup would pay two calls,
//! which cost more than the lookup itself. Without preemptible RCU,
//! `rcu_read_lock()` is `preempt_disable()`: on x86-64 one increment of the
//! per-CPU `__preempt_count`, and `rcu_read_unlock()` one decrement that
//! calls the scheduler when it reaches zero (a pending reschedule is folded
//! into the count). On exactly those configurations this guard is the x86
//! layer's inline `preempt_disable()`/`preempt_enable()`, the same
//! instructions as the C inlines in `arch/x86/include/asm/preempt.h`.
//! Everywhere else (preemptible RCU, lockdep, preempt debugging or tracing,
//! dynamic preemption, strict grace periods, other architectures) it is the
//! kernel crate's guard,
//! so the debug kernel keeps lockdep's RCU checking.

#[cfg(all(
    CONFIG_X86_64,
    CONFIG_PREEMPTION,
    CONFIG_PREEMPT_COUNT,
    not(CONFIG_PREEMPT_RCU),
    not(CONFIG_PREEMPT_DYNAMIC),
    not(CONFIG_DEBUG_PREEMPT),
    not(CONFIG_TRACE_PREEMPT_TOGGLE),
    not(CONFIG_DEBUG_LOCK_ALLOC),
    not(CONFIG_PROVE_RCU),
    not(CONFIG_RCU_STRICT_GRACE_PERIOD)
))]
mod imp {
    use kernel::types::NotThreadSafe;

    /// An RCU read-side critical section, open while this lives.
    ///
    /// # Invariants
    ///
    /// This CPU's preempt count was raised by one when it was made, and it is
    /// lowered once when dropped; it cannot move to another task or CPU.
    pub(crate) struct ReadGuard(NotThreadSafe);

    impl ReadGuard {
        /// `rcu_read_lock()`.
        #[inline(always)]
        pub(crate) fn new() -> Self {
            // SAFETY: paired with the enable in `drop` (type invariant).
            unsafe { crate::arch::preempt_disable() };
            ReadGuard(NotThreadSafe)
        }
    }

    impl Drop for ReadGuard {
        /// `rcu_read_unlock()`.
        #[inline(always)]
        fn drop(&mut self) {
            // SAFETY: `new` raised the count on this CPU (type invariant).
            unsafe { crate::arch::preempt_enable() };
        }
    }
}

#[cfg(not(all(
    CONFIG_X86_64,
    CONFIG_PREEMPTION,
    CONFIG_PREEMPT_COUNT,
    not(CONFIG_PREEMPT_RCU),
    not(CONFIG_PREEMPT_DYNAMIC),
    not(CONFIG_DEBUG_PREEMPT),
    not(CONFIG_TRACE_PREEMPT_TOGGLE),
    not(CONFIG_DEBUG_LOCK_ALLOC),
    not(CONFIG_PROVE_RCU),
    not(CONFIG_RCU_STRICT_GRACE_PERIOD)
)))]
mod imp {
    pub(crate) use kernel::sync::rcu::Guard as ReadGuard;
}

pub(crate) use imp::ReadGuard;
