// SPDX-License-Identifier: GPL-2.0

//! A Rust module with functions that livepatch can replace.
//!
//! An ordinary Rust function has no ftrace site (rustc emits no
//! `__fentry__` call), so livepatch cannot redirect it.
//! [`kernel::livepatch_patchable!`] gives these two the entry of a C
//! function:
//!
//! - `rust_klp_target_answer()`, which the module reports when it loads and
//!   when it is removed: 42, or what `rust_livepatch_target_patch` makes it
//!   (also for a copy of this module loaded after the patch);
//! - `rust_klp_target_sleep()`, which a work item started at init sleeps in
//!   for `sleep_ms` milliseconds: a patch of it cannot complete its
//!   transition while a task is inside it, as for a C function.

use kernel::{
    prelude::*,
    sync::Arc,
    time::{delay::fsleep, Delta},
    workqueue::{self, impl_has_delayed_work, new_delayed_work, DelayedWork, WorkItem},
};

module! {
    type: RustLivepatchTargetMod,
    name: "rust_livepatch_target_mod",
    authors: ["klp-rs"],
    description: "Live patching sample: Rust functions as patch targets",
    license: "GPL",
    params: {
        sleep_ms: u32 {
            default: 0,
            description: "Sleep this long in rust_klp_target_sleep(), from a work item started at init",
        },
    },
}

kernel::livepatch_patchable! {
    /// The answer, 42 unless a livepatch says otherwise.
    pub fn rust_klp_target_answer() -> u32 {
        42
    }
}

kernel::livepatch_patchable! {
    /// Sleeps for `ms` milliseconds; returns `ms`.
    pub fn rust_klp_target_sleep(ms: u32) -> u32 {
        fsleep(Delta::from_millis(i64::from(ms)));
        ms
    }
}

/// The work item that sleeps in `rust_klp_target_sleep()`.
#[pin_data]
struct Sleeper {
    #[pin]
    work: DelayedWork<Sleeper>,
    ms: u32,
}

impl_has_delayed_work! {
    impl HasDelayedWork<Self> for Sleeper { self.work }
}

impl WorkItem for Sleeper {
    type Pointer = Arc<Sleeper>;

    fn run(this: Arc<Sleeper>) {
        pr_info!("sleeping in rust_klp_target_sleep() for {} ms\n", this.ms);
        let slept = rust_klp_target_sleep(this.ms);
        pr_info!("left rust_klp_target_sleep() after {} ms\n", slept);
    }
}

struct RustLivepatchTargetMod {
    sleeper: Option<Arc<Sleeper>>,
}

impl kernel::Module for RustLivepatchTargetMod {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("answer at init: {}\n", rust_klp_target_answer());
        let ms = module_parameters::sleep_ms.value();
        let sleeper = if ms > 0 {
            let sleeper = Arc::pin_init(
                pin_init!(Sleeper {
                    work <- new_delayed_work!("rust_livepatch_target_mod::Sleeper"),
                    ms,
                }),
                GFP_KERNEL,
            )?;
            // Long-running: not on the per-CPU queue the transition uses.
            let _ = workqueue::system_long().enqueue_delayed(sleeper.clone(), 0);
            Some(sleeper)
        } else {
            None
        };
        Ok(RustLivepatchTargetMod { sleeper })
    }
}

impl Drop for RustLivepatchTargetMod {
    fn drop(&mut self) {
        // The work item's code is this module's: wait for a run to finish.
        if let Some(sleeper) = &self.sleeper {
            drop(sleeper.work.cancel_sync());
        }
        pr_info!("answer at exit: {}\n", rust_klp_target_answer());
    }
}
