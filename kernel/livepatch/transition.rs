// SPDX-License-Identifier: GPL-2.0

//! The consistency model: moving every task from the old set of functions
//! to the new one (or back) only at a point where it runs none of them.
//!
//! Each task carries `patch_state` (which version the ftrace handler gives
//! it) and, while it still has to switch, `TIF_PATCH_PENDING`. A task
//! switches when it leaves the kernel (`klp_update_patch_state`), in the
//! idle loop, when it sleeps freezably (`__klp_sched_try_switch`), or
//! when a pass finds its stack free of the affected functions.
//!
//! Unlike upstream, completion does not wait for a one-second retry: a
//! count of pending tasks is kept, and the switch that brings it to zero
//! queues the completing pass at once, as does a pending task leaving the
//! task list (`klp_release_task()`, a klp-rs hook in `release_task()`). The
//! periodic pass stays for tasks stuck on a patched function.

use core::sync::atomic::{
    fence, AtomicBool, AtomicI32, AtomicIsize, AtomicU32, Ordering::AcqRel, Ordering::Relaxed,
    Ordering::Release,
};

use kernel::bindings;
use kernel::cpus::{self, EachCpu, HotplugReadGuard};
use kernel::error::code::{EADDRINUSE, EBUSY, EINVAL};
use kernel::ffi::{c_int, c_ulong};
use kernel::livepatch::TransitionWriter;
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::sync::barrier::{smp_mb, Read};
use kernel::sync::rcu;
use kernel::sync::{Arc, SetOnce};
use kernel::task::{CurrentTask, Task};
use kernel::tasklist::{self, StableTask, TasklistReadGuard};
use kernel::workqueue::{self, impl_has_delayed_work, new_delayed_work, DelayedWork, WorkItem};

use crate::lock::{self, KlpLocked, Locked};
use crate::redirect;
use crate::shim::{self, Debug};
use crate::structs::{installed_patches, Func, Patch, PatchSlot};

pub(crate) use kernel::livepatch::patch_state::{IDLE, PATCHED, UNPATCHED};

/// What changes tasks' states and pending flags, and modules' `klp_alive`.
// SAFETY: this is the livepatch core, and the transition below (and the
// module notifier in the registry) follow its protocol.
pub(crate) static WRITER: TransitionWriter = unsafe { TransitionWriter::new() };

/// Calls `f` for every thread, then for the idle task of every possible CPU:
/// every task a transition must move.
fn for_each_task(mut f: impl FnMut(&Task)) {
    TasklistReadGuard::lock().for_each_thread(&mut f);
    cpus::possible_cpus()
        .filter_map(tasklist::idle_task)
        .for_each(f);
}

/// Waits until every CPU has gone through the scheduler, including CPUs in
/// user space or idle where RCU does not watch: the handler may run where
/// RCU does not watch, so plain RCU would not cover it.
fn sync_all_cpus() {
    struct Nothing;
    impl EachCpu for Nothing {
        fn run() {}
    }
    // As upstream, a failure (no memory for the work items) is not acted on.
    let _ = cpus::run_on_each_cpu::<Nothing>();
}

/// Passes without success after which stragglers get a fake signal, and
/// again every as many passes after that (upstream's `SIGNALS_TIMEOUT`).
const SIGNALS_TIMEOUT: u32 = 15;

/// The patch in transition, or NULL. Named as upstream's
/// `klp_transition_patch`, for debuggers (drgn, crash) that look it up.
/// Written under `klp_mutex`; the switch points and the `transition` file
/// read it without.
#[export_name = "klp_transition_patch"]
static TRANSITION_PATCH: PatchSlot = PatchSlot::new();

/// The state tasks switch to (`klp_target_state`).
static TARGET: AtomicI32 = AtomicI32::new(IDLE);

/// Passes (first and periodic) since the transition started.
static SIGNALS_CNT: KlpLocked<u32> = KlpLocked::new(0);

/// Transitions started so far, and the one the queued periodic pass was
/// queued for: a periodic pass of an earlier transition that was already
/// running when [`complete`] cancelled it, and then waited for `klp_mutex`,
/// does not count towards the signals of the next one.
static GENERATION: AtomicU32 = AtomicU32::new(0);
static RETRY_GENERATION: AtomicU32 = AtomicU32::new(0);

/// Tasks with `TIF_PATCH_PENDING`, plus one while [`BIAS`] is held.
///
/// Every clearing of the flag that comes with a switch, or with a pending
/// task leaving the task list, decrements it (the test-and-clear tells
/// exactly one clearer); forks of a pending task increment it. The
/// decrement that takes it to zero completes the transition at once. It is
/// exact: [`complete`] warns unless it is back to zero, and
/// [`count_switched`] if it would go below. (The completing pass checks
/// every task either way, so a wrong count would cost a pass or a second,
/// not correctness.)
static PENDING: AtomicIsize = AtomicIsize::new(0);

/// The start's own count in [`PENDING`], so that tasks switching while the
/// start is still flagging others cannot reach zero early. The first pass
/// after a start drops it.
static BIAS: AtomicBool = AtomicBool::new(false);

/// The patch in transition, for a holder of `klp_mutex` (which the guard
/// proves): set and cleared only under it.
pub(crate) fn transition_patch(locked: &Locked) -> Option<&Patch> {
    TRANSITION_PATCH.get(locked)
}

/// Whether `patch` is the one in transition. Only compares addresses, so
/// it needs no lock (the `transition` file asks).
pub(crate) fn is_transition_patch(patch: &Patch) -> bool {
    TRANSITION_PATCH.holds(patch)
}

/// One of upstream's transition debug lines.
fn debug(what: Debug, patch: &Patch, target: i32) {
    shim::debug_transition(what, patch.name(), target);
}

fn direction(target: i32) -> &'static str {
    if target == PATCHED {
        "patching"
    } else {
        "unpatching"
    }
}

/// Lets the scheduler try to switch tasks that sleep (`cond_resched()`).
fn sched_try_switch(enable: bool) {
    shim::set_sched_try_switch(enable);
}

/// Counts one task switched. Returns whether it was the last pending one.
fn count_switched() -> bool {
    let before = PENDING.fetch_sub(1, AcqRel);
    // More uncounted than counted: some clearing of the flag was not paired
    // with its setting.
    crate::warn_on_once!(before <= 0);
    before == 1
}

/// Flags `task` to switch, counting it.
fn flag_pending(task: &Task) {
    // Count first: the task may switch (and uncount) as soon as it is
    // flagged.
    PENDING.fetch_add(1, AcqRel);
    if WRITER.test_and_set_patch_pending(task) {
        PENDING.fetch_sub(1, AcqRel);
    }
}

/// Moves `task` to `target` on behalf of a check that found it safe.
/// Returns whether that made the pending count zero.
fn switch_task(task: &Task, target: i32) -> bool {
    let was_pending = WRITER.test_and_clear_patch_pending(task);
    WRITER.set_patch_state(task, target);
    was_pending && count_switched()
}

/// The global work items: the periodic retry and the immediate completion.
#[pin_data]
struct Completer {
    #[pin]
    retry: DelayedWork<Completer, 1>,
    #[pin]
    now: DelayedWork<Completer, 2>,
}

impl_has_delayed_work! {
    impl HasDelayedWork<Self, 1> for Completer { self.retry }
    impl HasDelayedWork<Self, 2> for Completer { self.now }
}

impl WorkItem<1> for Completer {
    type Pointer = Arc<Completer>;

    fn run(_this: Arc<Completer>) {
        let current = RETRY_GENERATION.load(Relaxed) == GENERATION.load(Relaxed);
        run_pass(if current { Pass::Periodic } else { Pass::Event });
    }
}

impl WorkItem<2> for Completer {
    type Pointer = Arc<Completer>;

    fn run(_this: Arc<Completer>) {
        run_pass(Pass::Event);
    }
}

/// Set by [`init`]; until then no transition can start.
static COMPLETER: SetOnce<Arc<Completer>> = SetOnce::new();

fn completer() -> Option<Arc<Completer>> {
    COMPLETER.as_ref().cloned()
}

/// Queues a pass right away. A one-jiffy delay only arms a timer, so this is
/// safe from the scheduler and with interrupts off; waking a worker from
/// `__schedule()` directly is not.
fn kick() {
    kick_after(1);
}

fn kick_after(delay: c_ulong) {
    if let Some(c) = completer() {
        let _ = percpu_queue().enqueue_delayed::<_, 2>(c, delay);
    }
}

/// Quick passes (20 ms apart) a transition may spend on tasks that were
/// only caught running or exiting, before it waits for the periodic pass.
const QUICK_RETRIES: u32 = 20;

/// Quick passes spent so far in this transition.
static QUICK_RETRIES_USED: KlpLocked<u32> = KlpLocked::new(0);

/// Queues the periodic pass (upstream's once a second), unless queued.
fn retry_later() {
    if let Some(c) = completer() {
        let delay = shim::round_jiffies_relative(bindings::HZ as c_ulong);
        RETRY_GENERATION.store(GENERATION.load(Relaxed), Relaxed);
        let _ = percpu_queue().enqueue_delayed::<_, 1>(c, delay);
    }
}

/// `system_percpu_wq`, where upstream's `schedule_delayed_work()` queues.
fn percpu_queue() -> &'static workqueue::Queue {
    workqueue::system_percpu()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// The first pass and the periodic ones: these count towards signals.
    Periodic,
    /// Queued by the last pending task switching.
    Event,
}

fn run_pass(kind: Pass) {
    let locked = lock::lock();
    if transition_patch(&locked).is_none() {
        return;
    }
    if let Some(patch) = try_complete(&locked, kind) {
        // Set before the work items exist, so always there.
        match ON_SWITCHED.copy() {
            Some(on_switched) => on_switched(&locked, patch),
            None => {
                crate::warn_on_once!(true);
            }
        }
    }
}

/// Who finishes a transition that a work item found every task switched
/// for (the registry: [`init`] is told, rather than this layer calling up).
static ON_SWITCHED: SetOnce<fn(&Locked, &Patch)> = SetOnce::new();

/// Sets up the work items; called once from the livepatch initcall.
/// `on_switched` finishes a transition every task has switched for, as the
/// callers of [`try_complete_transition`] do with what it returns.
pub(crate) fn init(on_switched: fn(&Locked, &Patch)) -> Result {
    ON_SWITCHED.populate(on_switched);
    let c = Arc::pin_init(
        pin_init!(Completer {
            retry <- new_delayed_work!("klp_transition_retry"),
            now <- new_delayed_work!("klp_transition_now"),
        }),
        GFP_KERNEL,
    )?;
    COMPLETER.populate(c);
    Ok(())
}

/// The code of `func` a task must not be in to switch to `target`: the
/// replacement when unpatching, the code it runs before when patching;
/// `(address, size)`.
fn affected_code(rcu: &rcu::Guard, func: &Func, target: i32) -> (usize, usize) {
    if target == UNPATCHED {
        (func.new_func(), func.new_size())
    } else {
        redirect::previous_code(rcu, func)
    }
}

/// The affected code of every function of a patch, sorted by address, for
/// one pass over the tasks: a stack check then costs a binary search per
/// frame, where going through the functions costs a lookup of each
/// function's previous code per task (quadratic in a patch of 1,000
/// functions checked against every task).
struct AffectedCode<'p> {
    /// `(start, end, position in the patch, function)`, by `start`.
    ranges: KVec<(usize, usize, usize, &'p Func)>,
    /// The largest `end` up to each range, to find overlapping ranges.
    max_end: KVec<usize>,
}

impl<'p> AffectedCode<'p> {
    fn new(patch: &'p Patch, target: i32) -> Result<Self> {
        let funcs = || {
            patch
                .objects()
                .filter(|obj| obj.patched())
                .flat_map(|obj| obj.funcs())
        };
        // Allocated before the read-side section, which must not sleep.
        let mut ranges = KVec::with_capacity(funcs().count(), GFP_KERNEL)?;
        let rcu = rcu::Guard::new();
        for (position, func) in funcs().enumerate() {
            let (addr, size) = affected_code(&rcu, func, target);
            ranges
                .push_within_capacity((addr, addr + size, position, func))
                .map_err(|_| ENOMEM)?;
        }
        drop(rcu);
        ranges.sort_unstable_by_key(|range| range.0);
        let mut max_end = KVec::with_capacity(ranges.len(), GFP_KERNEL)?;
        let mut end = 0;
        for range in ranges.iter() {
            end = end.max(range.1);
            max_end.push(end, GFP_KERNEL)?;
        }
        Ok(AffectedCode { ranges, max_end })
    }

    /// The first function, in patch order as upstream's check finds it, with
    /// affected code on `trace`.
    fn first_on(&self, trace: &[usize]) -> Option<&'p Func> {
        let mut first: Option<(usize, &'p Func)> = None;
        for &ip in trace {
            // The ranges that start at or before `ip`, walked back while one
            // of them may still reach past it.
            let mut index = self.ranges.partition_point(|range| range.0 <= ip);
            while index > 0 && self.max_end[index - 1] > ip {
                index -= 1;
                let (_, end, position, func) = self.ranges[index];
                if ip < end && first.is_none_or(|(best, _)| position < best) {
                    first = Some((position, func));
                }
            }
        }
        first.map(|(_, func)| func)
    }
}

/// Where the stack check finds the task: `Err` with `-EADDRINUSE` and the
/// function's name when it is on an affected function. `sorted` is the
/// pass's [`AffectedCode`], if it has one.
fn check_trace<'p>(
    trace: &[usize],
    patch: &'p Patch,
    target: i32,
    sorted: Option<&AffectedCode<'p>>,
) -> core::result::Result<(), (Error, Option<&'p CStr>)> {
    if let Some(sorted) = sorted {
        return match sorted.first_on(trace) {
            Some(func) => Err((EADDRINUSE, Some(func.old_name()))),
            None => Ok(()),
        };
    }
    let rcu = rcu::Guard::new();
    for obj in patch.objects().filter(|obj| obj.patched()) {
        for func in obj.funcs() {
            let (addr, size) = affected_code(&rcu, func, target);
            if trace.iter().any(|&ip| (addr..addr + size).contains(&ip)) {
                return Err((EADDRINUSE, Some(func.old_name())));
            }
        }
    }
    Ok(())
}

/// A task whose stack can be checked: the current one, or one whose
/// scheduling state is locked.
#[derive(Clone, Copy)]
enum Checked<'a> {
    Current(&'a CurrentTask),
    Stable(&'a StableTask),
}

impl Checked<'_> {
    fn task(&self) -> &Task {
        match self {
            Checked::Current(task) => task,
            Checked::Stable(task) => task,
        }
    }
}

/// `klp_check_and_switch_task()`. On `-EADDRINUSE`, `busy` names the
/// function found on the stack.
fn check_and_switch<'p>(
    task: Checked<'_>,
    patch: &'p Patch,
    sorted: Option<&AffectedCode<'p>>,
    zero: &mut bool,
    busy: &mut Option<&'p CStr>,
) -> c_int {
    let target = TARGET.load(Relaxed);
    let mut no_preempt = shim::PreemptDisabled::new();
    // SAFETY: stack checks do not nest, so this is the only borrow of the
    // buffer on this CPU.
    let entries = unsafe { no_preempt.stack_entries() };
    let trace = match task {
        Checked::Current(task) => task.stack_trace_reliable(entries),
        Checked::Stable(task) => task.stack_trace_reliable(entries),
    };
    let checked = trace
        .map_err(|err| (err, None))
        .and_then(|trace| check_trace(trace, patch, target, sorted));
    match checked {
        Ok(()) => {
            *zero |= switch_task(task.task(), target);
            0
        }
        Err((err, name)) => {
            *busy = name;
            err.to_errno()
        }
    }
}

/// Tries to switch one task: 0 when it is in the target state now, else
/// why not (`-EBUSY` running, `-EADDRINUSE` on an affected function,
/// `-EINVAL` unreliable stack or no stack checking).
fn try_switch_task<'p>(
    task: &Task,
    patch: &'p Patch,
    sorted: Option<&AffectedCode<'p>>,
    zero: &mut bool,
) -> c_int {
    if task.klp_patch_state() == TARGET.load(Relaxed) {
        return 0;
    }
    // Without reliable stack traces only the other switch points work.
    if !cfg!(all(CONFIG_STACKTRACE, CONFIG_HAVE_RELIABLE_STACKTRACE)) {
        return EINVAL.to_errno();
    }
    let mut busy = None;
    let current = kernel::current!();
    let ret = if task == &**current {
        check_and_switch(Checked::Current(current), patch, sorted, zero, &mut busy)
    } else {
        task.call_func(|task| {
            check_and_switch(Checked::Stable(task), patch, sorted, zero, &mut busy)
        })
    };
    if ret != 0 {
        shim::debug_try_switch(task, ret, busy);
    }
    ret
}

/// Hurries the stragglers: user tasks get a fake signal (they switch on
/// their way back to user space), kthreads sleeping interruptibly a wakeup.
pub(crate) fn signal_stragglers() {
    TasklistReadGuard::lock().for_each_thread(|task| {
        if !task.klp_patch_pending() {
            return;
        }
        if task.is_kthread() {
            task.wake_up_interruptible();
        } else {
            task.set_notify_signal();
        }
    });
}

/// One pass over every task. Returns the patch when every task has
/// switched, for the caller to finish the transition (see [`complete`]);
/// `None` while some still have to. A transition is running.
#[must_use]
fn try_complete(locked: &Locked, kind: Pass) -> Option<&Patch> {
    let patch = transition_patch(locked)?;
    let target = TARGET.load(Relaxed);
    crate::warn_on_once!(target == IDLE);
    let mut complete = true;
    let mut zero = false;
    // Whether every task left behind was only caught running, or is
    // exiting. A kthread caught running will not switch itself (it never
    // returns to user space, and sleeps unfreezably), nor will an exiting
    // task, so only a pass can switch them, and a pass a moment later
    // usually does. Tasks sleeping on an affected function are another
    // matter: those wait for the periodic pass.
    let mut quick = true;
    // Without memory for it, each check goes through the functions.
    let sorted = AffectedCode::new(patch, target).ok();
    let sorted = sorted.as_ref();
    TasklistReadGuard::lock().for_each_thread(|task| {
        let ret = try_switch_task(task, patch, sorted, &mut zero);
        if ret != 0 {
            complete = false;
            quick &= ret == EBUSY.to_errno() || task.is_exiting();
        }
    });
    {
        let _hotplug = HotplugReadGuard::lock();
        for cpu in cpus::possible_cpus() {
            let Some(idle) = tasklist::idle_task(cpu) else {
                continue;
            };
            if cpus::is_online(cpu) {
                if try_switch_task(idle, patch, sorted, &mut zero) != 0 {
                    complete = false;
                    // Its idle loop switches it: make it go around.
                    tasklist::wake_up_if_idle(cpu);
                }
            } else if idle.klp_patch_state() != target {
                // An offline CPU runs nothing.
                zero |= switch_task(idle, target);
            }
        }
    }

    if !complete {
        if kind == Pass::Periodic {
            let cnt = SIGNALS_CNT.get(locked);
            SIGNALS_CNT.set(locked, cnt.wrapping_add(1));
            if cnt != 0 && cnt % SIGNALS_TIMEOUT == 0 {
                if cnt == SIGNALS_TIMEOUT {
                    pr_notice!("signaling remaining tasks\n");
                }
                signal_stragglers();
            }
        }
        if BIAS.swap(false, AcqRel) {
            zero |= count_switched();
        }
        // The last straggler may have switched while we walked past it.
        if zero {
            kick();
        } else if quick && QUICK_RETRIES_USED.get(locked) < QUICK_RETRIES {
            QUICK_RETRIES_USED.set(locked, QUICK_RETRIES_USED.get(locked) + 1);
            // Look again soon, a bounded number of times, rather than in a
            // second.
            kick_after((bindings::HZ / 50).max(1) as c_ulong);
        }
        retry_later();
        return None;
    }

    sched_try_switch(false);
    Some(patch)
}

/// Ends the transition of `patch`, which every task has switched for (as
/// [`try_complete_transition`] returned it). `first` runs right after the
/// "completing" debug line and before anything else, as upstream's
/// `klp_complete_transition()` unpatches a cumulative patch's predecessors
/// and discards its nops there; it gets the target state.
pub(crate) fn complete(locked: &Locked, patch: &Patch, first: impl FnOnce(i32)) {
    let target = TARGET.load(Relaxed);
    debug(Debug::Complete, patch, target);
    first(target);

    if target == UNPATCHED {
        // Every task runs the old code now; take the new off the stacks,
        // and wait until no handler can still see them before clearing
        // `transition` (a handler that did could pick a removed function).
        redirect::unpatch_all(locked, patch);
        sync_all_cpus();
    }
    for func in patch.funcs() {
        func.set_transition(locked, false);
    }
    // A handler still seeing `transition` must not meet an idle task state.
    if target == PATCHED {
        sync_all_cpus();
    }

    for_each_task(|task| {
        // Cleared, not only reported: a flag left behind would be uncounted
        // from the next transition's count when its task is released.
        crate::warn_on_once!(WRITER.test_and_clear_patch_pending(task));
        WRITER.set_patch_state(task, IDLE);
    });
    // No task is flagged, and every switch point that cleared a flag has
    // returned (`sync_all_cpus()` above), so the count must be back to zero
    // (or one, for the bias of a transition whose first pass completed it).
    if BIAS.swap(false, AcqRel) {
        count_switched();
    }
    crate::warn_on_once!(PENDING.load(Relaxed) != 0);

    for obj in patch.objects().filter(|obj| obj.is_loaded()) {
        if target == PATCHED {
            obj.post_patch_callback(locked);
        } else {
            obj.post_unpatch_callback(locked);
        }
    }
    pr_notice!("'{}': {} complete\n", patch.name(), direction(target));
    TARGET.store(IDLE, Relaxed);
    TRANSITION_PATCH.set(locked, None);
    // Nothing is left for a queued periodic pass to do. Not waiting for one
    // already running: it waits for `klp_mutex`, then finds no transition.
    if let Some(c) = completer() {
        drop(c.retry.cancel());
    }
}

/// Prepares a transition of the installed `patch` to `state`: every task
/// starts in the opposite state, and every function of the patch is marked
/// in transition.
pub(crate) fn init_transition(locked: &Locked, patch: &Patch, state: c_int) {
    crate::warn_on_once!(TARGET.load(Relaxed) != IDLE);
    TRANSITION_PATCH.set(locked, Some(patch));
    // No effect until tasks get TIF_PATCH_PENDING.
    TARGET.store(state, Relaxed);
    debug(Debug::Init, patch, state);

    let initial = if state == PATCHED { UNPATCHED } else { PATCHED };
    for_each_task(|task| {
        crate::warn_on_once!(task.klp_patch_state() != IDLE);
        WRITER.set_patch_state(task, initial);
    });

    // Task states before `transition` (the handler reads them the other way
    // round), and the target before any TIF_PATCH_PENDING (switch points
    // must not copy an idle target).
    fence(Release);

    // When patching, the functions become visible to the handler only when
    // `klp_patch_object()` pushes them; when unpatching, they already are.
    for func in patch.funcs() {
        func.set_transition(locked, true);
    }
}

/// Called on error before the transition started: back to unpatched.
pub(crate) fn cancel_transition(locked: &Locked) {
    if crate::warn_on_once!(TARGET.load(Relaxed) != PATCHED) {
        return;
    }
    let Some(patch) = transition_patch(locked) else {
        return;
    };
    debug(Debug::Cancel, patch, PATCHED);
    TARGET.store(UNPATCHED, Relaxed);
    complete(locked, patch, |_| {});
}

/// Switches `task` if it is pending (`klp_update_patch_state()`). Called
/// for `current` on the way back to user space and in the idle loop, and
/// for every task by `force`, which knowingly breaks the consistency model.
pub(crate) fn update_patch_state(task: &Task) {
    // The handler may run where RCU does not watch; the transition's
    // `sync_all_cpus()` waits for this preemption-disabled section instead.
    let _no_preempt = shim::PreemptDisabled::new();
    // The test-and-clear is a full barrier: it orders the flag read before
    // the target read, and before later reads of `func->transition`.
    if WRITER.test_and_clear_patch_pending(task) {
        WRITER.set_patch_state(task, TARGET.load(Relaxed));
        if count_switched() {
            kick();
        }
    }
}

/// Flags every task not yet in the target state and lets the switch points
/// and passes work; after [`init_transition`].
pub(crate) fn start_transition(locked: &Locked) {
    let target = TARGET.load(Relaxed);
    crate::warn_on_once!(target == IDLE);
    let Some(patch) = transition_patch(locked) else {
        return;
    };
    pr_notice!(
        "'{}': starting {} transition\n",
        patch.name(),
        direction(target)
    );

    GENERATION.fetch_add(1, Relaxed);
    QUICK_RETRIES_USED.set(locked, 0);
    PENDING.store(1, Relaxed);
    BIAS.store(true, Release);
    for_each_task(|task| {
        if task.klp_patch_state() != target {
            flag_pending(task);
        }
    });

    sched_try_switch(true);
    SIGNALS_CNT.set(locked, 0);
}

/// One pass: switch whatever can be switched, and report whether all are; with
/// a transition started.
#[must_use]
pub(crate) fn try_complete_transition(locked: &Locked) -> Option<&Patch> {
    try_complete(locked, Pass::Periodic)
}

/// Turns a running transition around (writing the other value to
/// `enabled`).
pub(crate) fn reverse_transition(locked: &Locked) {
    let Some(patch) = transition_patch(locked) else {
        return;
    };
    let target = TARGET.load(Relaxed);
    debug(Debug::Reverse, patch, target);
    // Stop every switch point first, and wait for those already running.
    for_each_task(|task| {
        WRITER.test_and_clear_patch_pending(task);
    });
    sync_all_cpus();

    patch.set_enabled(locked, !patch.enabled());
    TARGET.store(
        if target == PATCHED {
            UNPATCHED
        } else {
            PATCHED
        },
        Relaxed,
    );
    // The new target before the new flags.
    fence(Release);
    start_transition(locked);
    // Tasks that never left the old state are done already: look at once
    // rather than at the next periodic pass.
    kick();
}

/// Gives the child of a fork its parent's state, pending flag included
/// (`klp_copy_process()`); called under `tasklist_lock` held for writing.
pub(crate) fn copy_process(child: &Task) {
    let parent = kernel::current!();
    // The child's flags are a copy of the parent's from earlier in the fork,
    // never counted, and maybe stale: the parent can have switched since.
    // The writers of the flag either hold tasklist_lock, which serialises
    // us, or are the parent itself.
    if parent.klp_patch_pending() {
        PENDING.fetch_add(1, AcqRel);
        WRITER.test_and_set_patch_pending(child);
    } else {
        WRITER.test_and_clear_patch_pending(child);
    }
    WRITER.set_patch_state(child, parent.klp_patch_state());
}

/// Stops counting `task`, which leaves the task list (`klp_release_task()`:
/// released, or its fork failed after [`copy_process`]); called under
/// `tasklist_lock` held for writing.
///
/// A task that exits while pending never switches, and passes no longer
/// see it once it is off the list. Its flag can only be this transition's:
/// the start and the completion walk the list under `tasklist_lock`, the
/// completion finding every listed task unflagged, so a flag set before the
/// transition began would have been seen there.
pub(crate) fn release_task(task: &Task) {
    if WRITER.test_and_clear_patch_pending(task) && count_switched() {
        // Arms a timer only: fine with interrupts off.
        kick();
    }
}

/// Switches every task now, whatever it runs (`force`): the administrator
/// accepts that this may break the consistency model. A transition runs.
pub(crate) fn force_transition(locked: &Locked) {
    pr_warn!("forcing remaining tasks to the patched state\n");
    for_each_task(update_patch_state);

    let Some(patch) = transition_patch(locked) else {
        return;
    };
    // Patches whose code may still run must never be freed.
    if TARGET.load(Relaxed) == UNPATCHED {
        patch.set_forced(locked);
    } else if patch.replace() {
        for other in installed_patches(locked).filter(|&other| other != patch) {
            other.set_forced(locked);
        }
    }
}

/// The scheduler's switch point for tasks sleeping in `schedule()`
/// (`__klp_sched_try_switch()`), called with preemption disabled.
pub(crate) fn sched_switch_point() {
    shim::assert_preemption_disabled();
    let current = kernel::current!();
    if !current.klp_patch_pending() {
        return;
    }
    // The flag (a plain C load) before the target (written in the opposite
    // order, with a full barrier between).
    smp_mb(Read);
    // SAFETY: only a task with `TIF_PATCH_PENDING` gets here, with
    // preemption disabled (our caller, `__schedule()`). `complete` runs once
    // no task has the flag, and waits (`sync_all_cpus()`) for the
    // preemption-disabled sections that saw it set before it clears the
    // slot and the patch can go; `reverse_transition` keeps the patch. So
    // the patch read here stays valid until we return.
    let Some(patch) = (unsafe { TRANSITION_PATCH.get_unlocked() }) else {
        return;
    };
    let mut zero = false;
    let _ = try_switch_task(current, patch, None, &mut zero);
    if zero {
        kick();
    }
}
