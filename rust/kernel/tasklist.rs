// SPDX-License-Identifier: GPL-2.0

//! The task list, idle tasks, and what the scheduler lets a caller do to a
//! task it keeps alive.
//!
//! [`TasklistReadGuard`] holds `tasklist_lock` for reading, under which every
//! thread on the task list stays alive and on the list, so the walk hands out
//! references that live as long as the guard. Each possible CPU's idle task
//! lives as long as the kernel. [`Task`] gains its thread flags, a way to run
//! a function while the task's state is fixed, and the wakeups.
//!
//! C headers: [`include/linux/sched.h`](srctree/include/linux/sched.h),
//! [`include/linux/sched/signal.h`](srctree/include/linux/sched/signal.h),
//! [`include/linux/sched/task.h`](srctree/include/linux/sched/task.h).

use crate::{
    bindings, cpu::CpuId, ffi::c_int, ffi::c_void, prelude::*, task::Task, types::NotThreadSafe,
};
use core::{mem::offset_of, ptr::addr_of_mut};

/// `tasklist_lock`, held for reading: no task joins or leaves the task list,
/// and every task on it stays alive.
///
/// # Invariants
///
/// This CPU holds `tasklist_lock` for reading while the guard exists.
pub struct TasklistReadGuard {
    // A reader-side rwlock is released where it was taken.
    _not_send: NotThreadSafe,
}

impl TasklistReadGuard {
    /// Takes `tasklist_lock` for reading (spins; no sleeping until the guard
    /// is dropped).
    pub fn lock() -> Self {
        // SAFETY: `tasklist_lock` is a static, initialised rwlock.
        unsafe { bindings::read_lock_tasklist() };
        // INVARIANT: taken just above.
        TasklistReadGuard {
            _not_send: NotThreadSafe,
        }
    }

    /// Calls `f` for every thread of every process (the idle tasks are not on
    /// the list), as `for_each_process_thread()`.
    pub fn for_each_thread<'a>(&'a self, mut f: impl FnMut(&'a Task)) {
        let tasks = offset_of!(bindings::task_struct, tasks);
        let thread_node = offset_of!(bindings::task_struct, thread_node);
        let init = addr_of_mut!(bindings::init_task);
        // SAFETY: the lock is held (type invariant), so the process list and
        // every process's thread list are stable; their entries are the
        // `tasks` and `thread_node` members of live tasks, and a process's
        // `signal` stays valid while it is listed. Each task found outlives
        // `'a`, the guard's borrow, and `Task` is a transparent wrapper.
        unsafe {
            let mut process = (*init)
                .tasks
                .next
                .byte_sub(tasks)
                .cast::<bindings::task_struct>();
            while process != init {
                let head = addr_of_mut!((*(*process).signal).thread_head);
                let mut node = (*head).next;
                while node != head {
                    f(Task::from_raw(node.byte_sub(thread_node).cast()));
                    node = (*node).next;
                }
                process = (*process).tasks.next.byte_sub(tasks).cast();
            }
        }
    }
}

impl Drop for TasklistReadGuard {
    fn drop(&mut self) {
        // SAFETY: this CPU holds the lock for reading (type invariant).
        unsafe { bindings::read_unlock_tasklist() };
    }
}

/// The idle task of `cpu`, if it is a possible CPU that has one (secondary
/// CPUs get theirs during SMP bring-up). Idle tasks are never freed.
pub fn idle_task(cpu: CpuId) -> Option<&'static Task> {
    if !crate::cpus::possible_mask().test(cpu) {
        return None;
    }
    // SAFETY: a possible CPU has a runqueue, whose idle task is NULL or a
    // task that is never freed.
    let idle = unsafe { bindings::idle_task(cpu.as_u32() as c_int) };
    if idle.is_null() {
        return None;
    }
    // SAFETY: not NULL, and never freed (above).
    Some(unsafe { Task::from_raw(idle) })
}

/// Makes `cpu`, if it idles, go around its idle loop once.
pub fn wake_up_if_idle(cpu: CpuId) {
    // SAFETY: any CPU number is accepted.
    unsafe { bindings::wake_up_if_idle(cpu.as_u32() as c_int) };
}

/// A thread flag (`TIF_*`), as in `thread_info.flags`. Flags whose owner
/// keeps invariants on them (as livepatch does on `TIF_PATCH_PENDING`) are
/// not offered here, but through their owner's abstraction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadFlag(pub(crate) c_int);

impl ThreadFlag {
    /// The task must go through its signal path (`TIF_NOTIFY_SIGNAL`).
    pub const NOTIFY_SIGNAL: Self = ThreadFlag(bindings::TIF_NOTIFY_SIGNAL as c_int);
}

impl Task {
    /// The `Task` of a raw pointer.
    ///
    /// # Safety
    ///
    /// `ptr` points to a task that stays alive for `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::task_struct) -> &'a Task {
        // SAFETY: alive for `'a` (the function's contract); `Task` is a
        // transparent wrapper.
        unsafe { &*ptr.cast::<Task>() }
    }

    /// Whether `flag` is set.
    #[inline]
    pub fn test_thread_flag(&self, flag: ThreadFlag) -> bool {
        // SAFETY: the task is alive for `&self`; flags change atomically.
        unsafe { bindings::test_tsk_thread_flag(self.as_ptr(), flag.0) != 0 }
    }

    /// Sets `flag`; returns whether it was set already. A full barrier.
    #[inline]
    pub fn test_and_set_thread_flag(&self, flag: ThreadFlag) -> bool {
        // SAFETY: as in `test_thread_flag`.
        unsafe { bindings::test_and_set_tsk_thread_flag(self.as_ptr(), flag.0) != 0 }
    }

    /// Clears `flag`; returns whether it was set. A full barrier.
    #[inline]
    pub fn test_and_clear_thread_flag(&self, flag: ThreadFlag) -> bool {
        // SAFETY: as in `test_thread_flag`.
        unsafe { bindings::test_and_clear_tsk_thread_flag(self.as_ptr(), flag.0) != 0 }
    }

    /// `task->flags`, read once (other tasks' flags are read racily in C
    /// too).
    #[inline]
    fn process_flags(&self) -> u32 {
        // SAFETY: the task is alive for `&self`.
        unsafe { addr_of_mut!((*self.as_ptr()).flags).read_volatile() }
    }

    /// Whether the task is a kernel thread (`PF_KTHREAD`, never cleared).
    pub fn is_kthread(&self) -> bool {
        self.process_flags() & bindings::PF_KTHREAD != 0
    }

    /// Whether the task is exiting (`PF_EXITING`, never cleared): it will not
    /// return to user space.
    pub fn is_exiting(&self) -> bool {
        self.process_flags() & bindings::PF_EXITING != 0
    }

    /// Whether the task is on a CPU right now: `task_curr()`.
    pub fn is_on_cpu(&self) -> bool {
        // SAFETY: the task is alive for `&self`.
        unsafe { bindings::task_curr(self.as_ptr()) != 0 }
    }

    /// Wakes the task if it sleeps interruptibly; returns whether it did.
    pub fn wake_up_interruptible(&self) -> bool {
        // SAFETY: the task is alive for `&self`.
        unsafe { bindings::wake_up_state(self.as_ptr(), bindings::TASK_INTERRUPTIBLE) != 0 }
    }

    /// `set_notify_signal()`: makes the task leave the kernel through its
    /// signal path, without a signal, waking or kicking it as needed.
    pub fn set_notify_signal(&self) {
        // SAFETY: the task is alive for `&self`.
        unsafe { bindings::set_notify_signal(self.as_ptr()) };
    }

    /// Runs `f` on the task while its scheduling state cannot change:
    /// `task_call_func()`. The task is then blocked, or running (on this CPU
    /// if it is the current task); `f` runs with the task's `pi_lock` and
    /// maybe its runqueue's lock held and interrupts off, so it must not
    /// sleep, nor wake, notify or `call_func` the same task (a deadlock).
    pub fn call_func<T, F: FnOnce(&StableTask) -> T>(&self, f: F) -> T {
        struct Call<F, T> {
            f: Option<F>,
            result: Option<T>,
        }

        /// # Safety
        ///
        /// `arg` is the `Call` passed below, not otherwise borrowed; `task`
        /// is alive.
        unsafe extern "C" fn trampoline<F: FnOnce(&StableTask) -> T, T>(
            task: *mut bindings::task_struct,
            arg: *mut c_void,
        ) -> c_int {
            // SAFETY: the function's contract.
            let call = unsafe { &mut *arg.cast::<Call<F, T>>() };
            if let Some(f) = call.f.take() {
                // SAFETY: `task_call_func` passes the live task it was given,
                // with its scheduling state locked until we return.
                call.result = Some(f(unsafe { StableTask::from_raw(task) }));
            }
            0
        }

        let mut call = Call {
            f: Some(f),
            result: None,
        };
        // SAFETY: the task is alive for `&self`; `trampoline` has the
        // signature `task_call_func` expects and uses `call`, which outlives
        // the synchronous call, only as the `Call` it is.
        unsafe {
            bindings::task_call_func(
                self.as_ptr(),
                Some(trampoline::<F, T>),
                (&raw mut call).cast(),
            )
        };
        // `task_call_func` calls the function exactly once, on every path.
        call.result.expect("task_call_func() did not call back")
    }
}

/// Takes a reliable stack trace of `task` into `buf`.
///
/// # Safety
///
/// The task's stack cannot change or go away meanwhile.
unsafe fn stack_trace_reliable<'b>(task: &Task, buf: &'b mut [usize]) -> Result<&'b [usize]> {
    #[cfg(all(CONFIG_STACKTRACE, CONFIG_HAVE_RELIABLE_STACKTRACE))]
    {
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        // SAFETY: the task's stack is stable (the function's contract); the
        // unwinder writes at most `len` entries into `buf`.
        let nr = unsafe {
            bindings::stack_trace_save_tsk_reliable(task.as_ptr(), buf.as_mut_ptr(), len)
        };
        let nr = usize::try_from(nr).map_err(|_| EINVAL)?;
        Ok(&buf[..nr.min(buf.len())])
    }
    #[cfg(not(all(CONFIG_STACKTRACE, CONFIG_HAVE_RELIABLE_STACKTRACE)))]
    {
        let _ = (task, buf);
        Err(EINVAL)
    }
}

/// A task whose scheduling state is locked: what [`Task::call_func`] hands
/// its callback. It cannot start or stop running until the callback
/// returns.
///
/// # Invariants
///
/// Only made inside `task_call_func()`'s callback, for its task, and not
/// usable past it (a reference to it does not outlive the callback).
#[repr(transparent)]
pub struct StableTask(Task);

impl StableTask {
    /// # Safety
    ///
    /// `ptr` is the task `task_call_func()` passes its callback, and the
    /// result is used only during that callback.
    unsafe fn from_raw<'a>(ptr: *mut bindings::task_struct) -> &'a StableTask {
        // SAFETY: `StableTask` is a transparent `Task`, and the task is
        // live (the function's contract).
        unsafe { &*ptr.cast::<StableTask>() }
    }

    /// The task's kernel stack, innermost frame first, into `buf`:
    /// `stack_trace_save_tsk_reliable()`. `Err(EBUSY)` while the task runs
    /// on another CPU, `Err(EINVAL)` when the unwinder cannot vouch for the
    /// whole trace or the kernel has no reliable unwinder.
    pub fn stack_trace_reliable<'b>(&self, buf: &'b mut [usize]) -> Result<&'b [usize]> {
        let current = Task::current_raw();
        if self.is_on_cpu() && self.as_ptr() != current {
            return Err(EBUSY);
        }
        // SAFETY: the task is current, or not running and unable to start
        // while its scheduling state is locked (type invariant): its stack
        // stays as it is, and allocated.
        unsafe { stack_trace_reliable(&self.0, buf) }
    }
}

impl core::ops::Deref for StableTask {
    type Target = Task;

    fn deref(&self) -> &Task {
        &self.0
    }
}

impl super::task::CurrentTask {
    /// The current task's own kernel stack, as
    /// [`StableTask::stack_trace_reliable`] takes it.
    pub fn stack_trace_reliable<'b>(&self, buf: &'b mut [usize]) -> Result<&'b [usize]> {
        // SAFETY: our own stack: it does not change under the unwinder, which
        // we run.
        unsafe { stack_trace_reliable(self, buf) }
    }
}

#[kunit_tests(rust_tasklist)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_finds_the_current_thread_once() {
        let me = crate::current!();
        let (mut found, mut threads) = (0, 0);
        let guard = TasklistReadGuard::lock();
        guard.for_each_thread(|task| {
            threads += 1;
            if task == &**me {
                found += 1;
            }
        });
        drop(guard);
        assert_eq!(found, 1);
        // At least this thread, init and kthreadd.
        assert!(threads >= 3);
    }

    #[test]
    fn the_walk_skips_idle_tasks() {
        let idle = idle_task(CpuId::current()).expect("this CPU has an idle task");
        let mut seen = false;
        let guard = TasklistReadGuard::lock();
        guard.for_each_thread(|task| seen |= task == idle);
        drop(guard);
        assert!(!seen);
        assert!(idle.is_kthread());
        assert_eq!(idle.pid(), 0);
    }

    #[test]
    fn thread_flags_set_and_clear() {
        let me = crate::current!();
        // NOTIFY_SIGNAL is only acted on when returning to user space; a
        // kernel thread can set and clear it freely.
        assert!(!me.test_thread_flag(ThreadFlag::NOTIFY_SIGNAL));
        assert!(!me.test_and_set_thread_flag(ThreadFlag::NOTIFY_SIGNAL));
        assert!(me.test_thread_flag(ThreadFlag::NOTIFY_SIGNAL));
        assert!(me.test_and_set_thread_flag(ThreadFlag::NOTIFY_SIGNAL));
        assert!(me.test_and_clear_thread_flag(ThreadFlag::NOTIFY_SIGNAL));
        assert!(!me.test_and_clear_thread_flag(ThreadFlag::NOTIFY_SIGNAL));
    }

    #[test]
    fn call_func_sees_a_blocked_task_blocked() {
        // KUnit runs each case in a kthread of its own while init (pid 1),
        // which runs the suites at boot, waits for it.
        let guard = TasklistReadGuard::lock();
        let mut seen = None;
        guard.for_each_thread(|task| {
            if task.pid() == 1 {
                seen = Some(task.call_func(|task| (task.pid(), task.is_on_cpu())));
            }
        });
        drop(guard);
        assert_eq!(seen, Some((1, false)));
    }

    #[test]
    fn call_func_on_current_returns_what_f_returns() {
        let me = crate::current!();
        assert_eq!(me.call_func(|task| task.pid()), me.pid());
        assert!(me.is_on_cpu());
        assert!(!me.is_exiting());
    }
}
