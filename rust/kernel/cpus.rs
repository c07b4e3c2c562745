// SPDX-License-Identifier: GPL-2.0

//! Walking CPUs: the possible and online CPUs, holding CPU hotplug off, and
//! running a function on every online CPU from a work item.
//!
//! C headers: [`include/linux/cpumask.h`](srctree/include/linux/cpumask.h),
//! [`include/linux/cpu.h`](srctree/include/linux/cpu.h),
//! [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h).

use crate::{
    bindings, cpu::CpuId, cpumask::Cpumask, error::to_result, prelude::*, types::NotThreadSafe,
};

/// `cpu_possible_mask`: the CPUs that can ever be online, fixed at boot.
pub fn possible_mask() -> &'static Cpumask {
    // SAFETY: a static mask, written only during early boot.
    unsafe { Cpumask::from_raw(&raw const bindings::__cpu_possible_mask) }
}

/// `cpu_online_mask`: the CPUs online now (it changes under hotplug; see
/// [`HotplugReadGuard`]).
pub fn online_mask() -> &'static Cpumask {
    // SAFETY: a static mask; hotplug updates its bits atomically.
    unsafe { Cpumask::from_raw(&raw const bindings::__cpu_online_mask) }
}

/// Every possible CPU, in order: `for_each_possible_cpu()`.
pub fn possible_cpus() -> impl Iterator<Item = CpuId> {
    (0..crate::cpu::nr_cpu_ids())
        .filter_map(CpuId::from_u32)
        .filter(|&cpu| possible_mask().test(cpu))
}

/// Whether `cpu` is online: `cpu_online()`.
pub fn is_online(cpu: CpuId) -> bool {
    online_mask().test(cpu)
}

/// CPU hotplug held off: `cpus_read_lock()`, for as long as the guard lives.
///
/// # Invariants
///
/// The CPU hotplug lock is held for reading while the guard exists.
pub struct HotplugReadGuard {
    // Released by the task that took it (lockdep tracks the owner).
    _not_send: NotThreadSafe,
}

impl HotplugReadGuard {
    /// Takes the lock; may sleep.
    pub fn lock() -> Self {
        crate::task::might_sleep();
        // SAFETY: process context, as `might_sleep()` checks.
        unsafe { bindings::cpus_read_lock() };
        // INVARIANT: taken just above.
        HotplugReadGuard {
            _not_send: NotThreadSafe,
        }
    }
}

impl Drop for HotplugReadGuard {
    fn drop(&mut self) {
        // SAFETY: held (type invariant).
        unsafe { bindings::cpus_read_unlock() };
    }
}

/// Work to run on every online CPU with [`run_on_each_cpu`].
pub trait EachCpu {
    /// Runs once on each online CPU, in a per-CPU work item.
    fn run();
}

/// Runs `W::run` on every online CPU and waits for all of them:
/// `schedule_on_each_cpu()`. Each CPU goes through the scheduler on the way,
/// which makes this a barrier against code running with preemption off on
/// any CPU, also where RCU does not watch. May sleep.
pub fn run_on_each_cpu<W: EachCpu>() -> Result {
    /// # Safety
    ///
    /// None: called by the workqueue with its own work item.
    unsafe extern "C" fn run<W: EachCpu>(_work: *mut bindings::work_struct) {
        W::run();
    }
    crate::task::might_sleep();
    // SAFETY: process context, as `might_sleep()` checks; `run::<W>` has the
    // signature of a work function and ignores its work item.
    to_result(unsafe { bindings::schedule_on_each_cpu(Some(run::<W>)) })
}

#[kunit_tests(rust_cpus)]
mod tests {
    use super::*;
    use crate::sync::atomic::{Atomic, Relaxed};

    #[test]
    fn possible_cpus_count_as_the_mask_weighs() {
        assert_eq!(possible_cpus().count() as u32, possible_mask().weight());
        assert!(possible_cpus().any(|cpu| cpu == CpuId::current()));
    }

    #[test]
    fn online_cpus_are_possible_ones() {
        assert!(is_online(CpuId::current()));
        let hotplug = HotplugReadGuard::lock();
        let online = possible_cpus().filter(|&cpu| is_online(cpu)).count() as u32;
        let weight = online_mask().weight();
        drop(hotplug);
        // Every online CPU is a possible one.
        assert_eq!(online, weight);
    }

    static RUNS: Atomic<i32> = Atomic::new(0);

    struct Count;

    impl EachCpu for Count {
        fn run() {
            RUNS.add(1, Relaxed);
        }
    }

    #[test]
    fn run_on_each_cpu_runs_once_per_online_cpu() {
        RUNS.store(0, Relaxed);
        let hotplug = HotplugReadGuard::lock();
        let online = online_mask().weight();
        drop(hotplug);
        assert_eq!(run_on_each_cpu::<Count>(), Ok(()));
        assert_eq!(RUNS.load(Relaxed) as u32, online);
    }
}
