// SPDX-License-Identifier: GPL-2.0

//! Live patching.
//!
//! For livepatch modules written in Rust (`CONFIG_LIVEPATCH_RUST`): a patch
//! declared as statics with [`klp_patch!`](crate::klp_patch) and enabled
//! by a [`LivepatchModule`] ([`patch`]), typed `klp_state` data
//! ([`StateData`]), typed shadow variables ([`shadow`]),
//! and Rust functions a patch can replace
//! ([`livepatch_patchable!`](crate::livepatch_patchable), [`target`]).
//!
//! For the core: what it keeps in other subsystems' structs (a task's
//! transition state and pending flag, a module's livepatch flags).
//!
//! Anyone may read them. Changing them is the core's alone: the consistency
//! model, and with it when patched code may be freed, rests on them. So the
//! writes are methods of [`TransitionWriter`], which only an `unsafe`
//! constructor makes.
//!
//! C header: [`include/linux/livepatch.h`](srctree/include/linux/livepatch.h).

use crate::{
    bindings,
    ffi::c_int,
    loaded_module::LoadedModule,
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
    task::Task,
    tasklist::ThreadFlag,
};

#[cfg(CONFIG_LIVEPATCH_RUST)]
pub mod patch;
#[cfg(CONFIG_LIVEPATCH_RUST)]
pub mod shadow;
#[cfg(CONFIG_LIVEPATCH_RUST)]
pub mod target;

#[cfg(CONFIG_LIVEPATCH_RUST)]
pub use patch::{
    callbacks, no_callbacks, Callbacks, Entry, Func, FuncList, List, LivepatchModule, Object,
    ObjectList, Patch, PatchStatic, State, StateData, StateList, StateRef, Target,
};
#[cfg(CONFIG_LIVEPATCH_RUST)]
pub use shadow::{Attached, Shadow};

/// The transition state of a task (`task->patch_state`).
pub mod patch_state {
    use crate::bindings;

    /// Not in a transition.
    pub const IDLE: i32 = bindings::KLP_TRANSITION_IDLE;
    /// Runs the unpatched functions.
    pub const UNPATCHED: i32 = bindings::KLP_TRANSITION_UNPATCHED as i32;
    /// Runs the patched functions.
    pub const PATCHED: i32 = bindings::KLP_TRANSITION_PATCHED as i32;
}

/// `TIF_PATCH_PENDING`, kept out of [`ThreadFlag`]'s public constants: only
/// a [`TransitionWriter`] may change it.
const PATCH_PENDING: ThreadFlag = ThreadFlag(bindings::TIF_PATCH_PENDING as c_int);

/// `task->patch_state` as an atomic.
///
/// # Safety
///
/// `task` is alive for `'a`.
#[inline(always)]
unsafe fn patch_state_of<'a>(task: *mut bindings::task_struct) -> &'a Atomic<i32> {
    // SAFETY: alive for `'a` (the function's contract). Rust reaches the
    // field only through here, atomically. C reads it plainly in
    // `/proc/<pid>/patch_state` and copies it in `dup_task_struct()`; those
    // are word-sized races C has as well, and tear nothing.
    unsafe { Atomic::from_ptr(&raw mut (*task).patch_state) }
}

impl Task {
    /// The task's livepatch transition state, one of [`patch_state`]'s: read
    /// by the function redirect on every patched call.
    #[inline(always)]
    pub fn klp_patch_state(&self) -> i32 {
        // SAFETY: the task is alive for `&self`.
        unsafe { patch_state_of(self.as_ptr()) }.load(Relaxed)
    }

    /// Whether a transition wants the task to switch: `klp_patch_pending()`.
    #[inline(always)]
    pub fn klp_patch_pending(&self) -> bool {
        self.test_thread_flag(PATCH_PENDING)
    }
}

impl LoadedModule {
    /// Whether the module says it is a livepatch (`MODULE_INFO(livepatch,
    /// "Y")`), as the loader found when it loaded it.
    pub fn is_livepatch(&self) -> bool {
        // SAFETY: a field of the live module, written before it was listed.
        unsafe { (*self.as_ptr()).klp }
    }

    fn klp_alive_cell(&self) -> &Atomic<bool> {
        // SAFETY: a field of the live module. Only the livepatch core
        // accesses it, through here and atomically; the loader zeroes it
        // before the module is listed.
        unsafe { Atomic::from_ptr(&raw mut (*self.as_ptr()).klp_alive) }
    }

    /// Whether the livepatch core has seen the module come and not yet go
    /// (`mod->klp_alive`).
    pub fn klp_alive(&self) -> bool {
        self.klp_alive_cell().load(Relaxed)
    }
}

/// The right to change what [`Task::klp_patch_state`],
/// [`Task::klp_patch_pending`] and [`LoadedModule::klp_alive`] read.
///
/// # Invariants
///
/// Only the livepatch core holds one, and uses it by its rules: states and
/// flags change as the transition's protocol says, `klp_alive` only under
/// `klp_mutex` as the module comes and goes.
pub struct TransitionWriter(());

impl TransitionWriter {
    /// # Safety
    ///
    /// Only the livepatch core calls this, which keeps the invariant.
    pub const unsafe fn new() -> Self {
        TransitionWriter(())
    }

    /// Sets `task->patch_state`.
    #[inline]
    pub fn set_patch_state(&self, task: &Task, state: i32) {
        // SAFETY: the task is alive for `&task`.
        unsafe { patch_state_of(task.as_ptr()) }.store(state, Relaxed)
    }

    /// Sets `TIF_PATCH_PENDING`; returns whether it was set. A full barrier.
    #[inline]
    pub fn test_and_set_patch_pending(&self, task: &Task) -> bool {
        task.test_and_set_thread_flag(PATCH_PENDING)
    }

    /// Clears `TIF_PATCH_PENDING`; returns whether it was set. A full
    /// barrier.
    #[inline]
    pub fn test_and_clear_patch_pending(&self, task: &Task) -> bool {
        task.test_and_clear_thread_flag(PATCH_PENDING)
    }

    /// Sets `mod->klp_alive`.
    pub fn set_klp_alive(&self, module: &LoadedModule, alive: bool) {
        module.klp_alive_cell().store(alive, Relaxed)
    }
}

#[kunit_tests(rust_livepatch)]
mod tests {
    use super::*;

    #[test]
    fn tasks_start_outside_any_transition() {
        // KUnit runs at boot, before any livepatch can be loaded.
        let me = crate::current!();
        assert_eq!(me.klp_patch_state(), patch_state::IDLE);
        assert!(!me.klp_patch_pending());
        let idle = crate::tasklist::idle_task(crate::cpu::CpuId::current())
            .expect("this CPU has an idle task");
        assert_eq!(idle.klp_patch_state(), patch_state::IDLE);
    }
}
