// SPDX-License-Identifier: GPL-2.0

//! Thin views of tasks and CPUs for the consistency model: walking every
//! thread under `tasklist_lock`, the idle tasks, a task's `patch_state` and
//! its `TIF_PATCH_PENDING` flag, running a check on a task that cannot run
//! meanwhile (`task_call_func`), and the wakeups that hurry stragglers.
//!
//! Every `unsafe` about tasks in the core is here. The fields this touches
//! (`patch_state`, the thread flags) are shared with other CPUs, so they are
//! accessed as atomics, as C's `READ_ONCE` and bit operations do. Fields are
//! read through bindgen's layout, which [`crate::layout`] checks against C's
//! at build time.

use core::mem::offset_of;
use core::ptr::{addr_of_mut, NonNull};
use core::sync::atomic::{AtomicI32, AtomicUsize, Ordering::Relaxed};

use kernel::bindings;
use kernel::ffi::{c_int, c_void};

/// A task the caller keeps alive: it holds `tasklist_lock` (the thread walk),
/// or the task is `current` or a CPU's idle task, or ftrace/the scheduler
/// handed it over.
///
/// # Invariants
///
/// Points to a live `task_struct` for as long as the value is used.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskRef(NonNull<bindings::task_struct>);

const PATCH_PENDING: usize = 1 << bindings::TIF_PATCH_PENDING;
const NOTIFY_SIGNAL: usize = 1 << bindings::TIF_NOTIFY_SIGNAL;

impl TaskRef {
    /// # Safety
    ///
    /// `task` points to a task that stays alive while the result is used.
    pub(crate) unsafe fn from_raw(task: *mut bindings::task_struct) -> Option<Self> {
        NonNull::new(task).map(TaskRef)
    }

    /// The running task.
    #[inline(always)]
    pub(crate) fn current() -> Self {
        // SAFETY: `current` is never NULL once the kernel runs tasks.
        // INVARIANT: the current task outlives anything it runs.
        TaskRef(unsafe { NonNull::new_unchecked(kernel::task::Task::current_raw()) })
    }

    pub(crate) fn as_ptr(self) -> *mut bindings::task_struct {
        self.0.as_ptr()
    }

    fn flags(self) -> &'static AtomicUsize {
        // SAFETY: the task is alive (type invariant); x86 keeps `thread_info`
        // inside the task, and its `flags` word is only changed atomically.
        // The 'static lifetime never escapes this module's short uses.
        unsafe { AtomicUsize::from_ptr(addr_of_mut!((*self.as_ptr()).thread_info.flags).cast()) }
    }

    #[inline(always)]
    fn state_cell(self) -> &'static AtomicI32 {
        // SAFETY: the task is alive (type invariant); `patch_state` is an
        // aligned int that other CPUs read and write, hence the atomic view.
        unsafe { AtomicI32::from_ptr(addr_of_mut!((*self.as_ptr()).patch_state)) }
    }

    /// `task->flags`, read once: other tasks' flags are read racily in C
    /// too.
    fn task_flags(self) -> u32 {
        // SAFETY: the task is alive (type invariant).
        unsafe { addr_of_mut!((*self.as_ptr()).flags).read_volatile() }
    }

    /// `task->patch_state`.
    #[inline(always)]
    pub(crate) fn patch_state(self) -> i32 {
        self.state_cell().load(Relaxed)
    }

    pub(crate) fn set_patch_state(self, state: i32) {
        self.state_cell().store(state, Relaxed)
    }

    /// Whether `TIF_PATCH_PENDING` is set: `klp_patch_pending()`.
    pub(crate) fn patch_pending(self) -> bool {
        self.flags().load(Relaxed) & PATCH_PENDING != 0
    }

    /// Sets `TIF_PATCH_PENDING`; returns whether it was set before.
    pub(crate) fn test_and_set_patch_pending(self) -> bool {
        self.flags().fetch_or(PATCH_PENDING, Relaxed) & PATCH_PENDING != 0
    }

    /// Clears `TIF_PATCH_PENDING`; returns whether it was set. A full barrier,
    /// as C's `test_and_clear_bit()` (a locked instruction on x86).
    pub(crate) fn test_and_clear_patch_pending(self) -> bool {
        self.flags()
            .fetch_and(!PATCH_PENDING, core::sync::atomic::Ordering::SeqCst)
            & PATCH_PENDING
            != 0
    }

    /// PF_KTHREAD never changes once set.
    pub(crate) fn is_kthread(self) -> bool {
        self.task_flags() & bindings::PF_KTHREAD != 0
    }

    /// Whether the task is on its way out (`PF_EXITING`): it will not
    /// return to user space, so only a pass can see it gone.
    pub(crate) fn is_exiting(self) -> bool {
        // PF_EXITING is never cleared once set.
        self.task_flags() & bindings::PF_EXITING != 0
    }

    /// Whether the task is on a CPU right now: `task_curr()`.
    pub(crate) fn is_running(self) -> bool {
        // SAFETY: the task is alive (type invariant).
        unsafe { bindings::task_curr(self.as_ptr()) != 0 }
    }

    /// Wakes the task if it sleeps interruptibly: `wake_up_state()`.
    pub(crate) fn wake_interruptible(self) -> bool {
        // SAFETY: the task is alive (type invariant).
        unsafe { bindings::wake_up_state(self.as_ptr(), bindings::TASK_INTERRUPTIBLE) != 0 }
    }

    /// `set_notify_signal()`: makes the task leave the kernel through its
    /// signal path without delivering a signal.
    pub(crate) fn notify_signal(self) {
        if self
            .flags()
            .fetch_or(NOTIFY_SIGNAL, core::sync::atomic::Ordering::SeqCst)
            & NOTIFY_SIGNAL
            == 0
            && !self.wake_interruptible()
        {
            // SAFETY: the task is alive (type invariant).
            unsafe { bindings::kick_process(self.as_ptr()) };
        }
    }

    /// Runs `f` on the task while it cannot run: `task_call_func()`. `f`
    /// must not sleep or take the runqueue lock (it runs under it).
    pub(crate) fn call_inactive<F: FnMut(TaskRef) -> c_int>(self, mut f: F) -> c_int {
        /// # Safety
        ///
        /// `arg` points to an `F` borrowed for this call; `task` is live.
        unsafe extern "C" fn trampoline<F: FnMut(TaskRef) -> c_int>(
            task: *mut bindings::task_struct,
            arg: *mut c_void,
        ) -> c_int {
            // SAFETY: `arg` is the `F` below, borrowed for this call only;
            // `task_call_func` hands back the live task it was given.
            unsafe { (*arg.cast::<F>())(TaskRef(NonNull::new_unchecked(task))) }
        }
        // SAFETY: the task is alive (type invariant); the closure outlives
        // the synchronous call.
        unsafe {
            bindings::task_call_func(
                self.as_ptr(),
                Some(trampoline::<F>),
                core::ptr::from_mut(&mut f).cast(),
            )
        }
    }
}

/// Calls `f` for every thread of every process (not the idle tasks), under
/// `tasklist_lock` held for reading, as `for_each_process_thread()` does.
pub(crate) fn for_each_thread(mut f: impl FnMut(TaskRef)) {
    let lock = addr_of_mut!(bindings::tasklist_lock);
    // SAFETY: `tasklist_lock` is a static rwlock; `read_lock()` is this call.
    unsafe { bindings::_raw_read_lock(lock) };
    // The task whose `tasks` (or `thread_node`) member is `node`.
    let owner = |node: *mut bindings::list_head, offset: usize| {
        // SAFETY: `node` is that member of a live task (see below).
        TaskRef(unsafe { NonNull::new_unchecked(node.byte_sub(offset).cast()) })
    };
    let tasks = offset_of!(bindings::task_struct, tasks);
    let thread_node = offset_of!(bindings::task_struct, thread_node);
    // SAFETY: `init_task` is static.
    let init = TaskRef(unsafe { NonNull::new_unchecked(addr_of_mut!(bindings::init_task)) });
    // SAFETY: under `tasklist_lock` the process list and each process's
    // thread list are stable, and their entries are the `tasks` and
    // `thread_node` members of live tasks; a process's `signal` stays valid
    // while it is on the list.
    unsafe {
        let mut proc = owner((*init.as_ptr()).tasks.next, tasks);
        while proc != init {
            let head = addr_of_mut!((*(*proc.as_ptr()).signal).thread_head);
            let mut pos = (*head).next;
            while pos != head {
                f(owner(pos, thread_node));
                pos = (*pos).next;
            }
            proc = owner((*proc.as_ptr()).tasks.next, tasks);
        }
    }
    // SAFETY: taken above.
    unsafe { bindings::_raw_read_unlock(lock) };
}

/// Whether `cpu` is in `mask`: `cpumask_test_cpu()`.
///
/// # Safety
///
/// `mask` is a live CPU mask at least `cpu + 1` bits long.
unsafe fn cpu_in(mask: *const bindings::cpumask, cpu: u32) -> bool {
    let bits = usize::BITS;
    // SAFETY: the word holding bit `cpu` is inside the mask (caller's
    // contract); a racy bit read is what C does too.
    let word = unsafe {
        core::ptr::read_volatile(
            addr_of_mut!((*mask.cast_mut()).bits)
                .cast::<usize>()
                .add((cpu / bits) as usize),
        )
    };
    word & (1 << (cpu % bits)) != 0
}

/// `for_each_possible_cpu()`.
pub(crate) fn possible_cpus() -> impl Iterator<Item = u32> {
    // SAFETY: `nr_cpu_ids` is set at boot, before any livepatch can load.
    let nr = unsafe { *addr_of_mut!(bindings::nr_cpu_ids) };
    // SAFETY: a static mask of `NR_CPUS` bits, and `cpu < nr_cpu_ids`.
    (0..nr).filter(|&cpu| unsafe { cpu_in(addr_of_mut!(bindings::__cpu_possible_mask), cpu) })
}

/// `cpu_online()`.
pub(crate) fn cpu_online(cpu: u32) -> bool {
    // SAFETY: nr_cpu_ids is set at boot and never changes.
    let nr = unsafe { *addr_of_mut!(bindings::nr_cpu_ids) };
    // SAFETY: a static mask of `NR_CPUS` bits, and `cpu < nr_cpu_ids`.
    cpu < nr && unsafe { cpu_in(addr_of_mut!(bindings::__cpu_online_mask), cpu) }
}

/// The idle task of a possible CPU.
pub(crate) fn idle_task(cpu: u32) -> TaskRef {
    // SAFETY: `cpu` is a possible CPU, whose runqueue and idle task exist
    // from boot on and are never freed.
    let task = unsafe { bindings::idle_task(cpu as c_int) };
    // INVARIANT: idle tasks live forever.
    TaskRef(NonNull::new(task).expect("idle task"))
}

/// Calls `f` for every thread (see [`for_each_thread`]), then for the idle
/// task of every possible CPU: every task a transition must move.
pub(crate) fn for_each_task(mut f: impl FnMut(TaskRef)) {
    for_each_thread(&mut f);
    possible_cpus().map(idle_task).for_each(f);
}

/// Makes an idle CPU go around its idle loop, where it switches itself.
pub(crate) fn wake_if_idle(cpu: u32) {
    // SAFETY: any CPU number is accepted.
    unsafe { bindings::wake_up_if_idle(cpu as c_int) };
}

/// Holds CPU hotplug off while it lives: `cpus_read_lock()`.
pub(crate) struct CpusReadGuard(());

impl CpusReadGuard {
    pub(crate) fn new() -> Self {
        // SAFETY: may sleep; the callers run in process context.
        unsafe { bindings::cpus_read_lock() };
        CpusReadGuard(())
    }
}

impl Drop for CpusReadGuard {
    fn drop(&mut self) {
        // SAFETY: taken in `new`.
        unsafe { bindings::cpus_read_unlock() };
    }
}

/// Waits until every CPU has gone through the scheduler, including CPUs in
/// user space or idle where RCU does not watch: the livepatch handler may
/// run where RCU does not watch, so plain RCU would not cover it.
pub(crate) fn sync_all_cpus() {
    /// # Safety
    ///
    /// None: it does nothing.
    unsafe extern "C" fn nothing(_work: *mut bindings::work_struct) {}
    // SAFETY: may sleep; callers run in process context. The function runs
    // once on each CPU and does nothing.
    unsafe { bindings::schedule_on_each_cpu(Some(nothing)) };
}
