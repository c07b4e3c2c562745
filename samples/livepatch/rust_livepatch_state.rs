// SPDX-License-Identifier: GPL-2.0

//! A cumulative livepatch that changes a system state, in Rust.
//!
//! While it is enabled, the patch raises the console log level to
//! `CONSOLE_LOGLEVEL_MOTORMOUTH`, and it records that change as `klp_state`
//! 1, version 2, whose data is the level it saved. It replaces every patch
//! enabled before it (`replace`), and a patch it replaces may have made the
//! change already: then it takes the saved level over instead of saving the
//! raised one, and leaves the change to a patch that replaces it in turn.
//! The state's id, version and messages are those of the C selftest modules
//! `test_klp_state.ko` (version 1) and `test_klp_state2.ko`/`3.ko`
//! (version 2), so it hands the state over with them in both directions;
//! the core refuses to let version 1 replace it.
//!
//! ```text
//! insmod test_klp_state.ko               # saves the level, raises it
//! insmod rust_livepatch_state.ko         # replaces it, takes the state over
//! rmmod test_klp_state
//! echo 0 > /sys/kernel/livepatch/rust_livepatch_state/enabled   # restores
//! rmmod rust_livepatch_state
//! ```

use kernel::{
    bindings,
    livepatch::{Callbacks, LivepatchModule, Patch, StateData, Target},
    prelude::*,
    print::{console_loglevel, set_console_loglevel},
};

module! {
    type: RustLivepatchState,
    name: "rust_livepatch_state",
    authors: ["klp-rs"],
    description: "Live patching sample in Rust: a cumulative patch with a klp_state",
    license: "GPL",
}

/// The console log level the first patch found, saved while the patches
/// keep it raised.
// SAFETY: state 1 is `CONSOLE_LOGLEVEL_STATE` of the C selftest modules,
// which keep a `kzalloc`ed `int` there, as a `KBox<i32>` does, and reach it
// from their callbacks only.
const CONSOLE_LOGLEVEL: StateData<i32, 1> = unsafe { StateData::new() };

kernel::klp_patch! {
    static PATCH = {
        objects: [
            vmlinux {
                funcs: [],
                callbacks: Loglevel,
            },
        ],
        states: [ { id: CONSOLE_LOGLEVEL.id(), version: 2 } ],
        replace: true,
    };
}

struct Loglevel;

fn callback_info(callback: &str) {
    pr_info!("{}: vmlinux\n", callback);
}

#[vtable]
impl Callbacks for Loglevel {
    fn pre_patch(target: &mut Target<'_>) -> Result {
        callback_info("pre_patch_callback");
        if target.prev_state(&CONSOLE_LOGLEVEL).is_some() {
            pr_info!(
                "allocate_loglevel_state: space to store console_loglevel already allocated\n"
            );
            return Ok(());
        }
        let mut state = target.state(&CONSOLE_LOGLEVEL).ok_or(EINVAL)?;
        state.set(KBox::new(0, GFP_KERNEL)?);
        pr_info!("allocate_loglevel_state: allocating space to store console_loglevel\n");
        Ok(())
    }

    fn post_patch(target: &mut Target<'_>) {
        callback_info("post_patch_callback");
        if let Some(mut prev) = target.prev_state(&CONSOLE_LOGLEVEL) {
            pr_info!("fix_console_loglevel: taking over the console_loglevel change\n");
            // The replaced patch is done once this transition completes: its
            // saved level is this patch's now.
            let saved = prev.take();
            if let (Some(saved), Some(mut state)) = (saved, target.state(&CONSOLE_LOGLEVEL)) {
                state.set(saved);
            }
            return;
        }
        let Some(mut state) = target.state(&CONSOLE_LOGLEVEL) else {
            return;
        };
        let Some(saved) = state.get_mut() else {
            return;
        };
        pr_info!("fix_console_loglevel: fixing console_loglevel\n");
        *saved = console_loglevel();
        set_console_loglevel(bindings::CONSOLE_LOGLEVEL_MOTORMOUTH as i32);
    }

    fn pre_unpatch(target: &mut Target<'_>) {
        callback_info("pre_unpatch_callback");
        if target.prev_state(&CONSOLE_LOGLEVEL).is_some() {
            pr_info!(
                "restore_console_loglevel: passing the console_loglevel change back to the old livepatch\n"
            );
            return;
        }
        let saved = target
            .state(&CONSOLE_LOGLEVEL)
            .and_then(|state| state.get().copied());
        if let Some(saved) = saved {
            pr_info!("restore_console_loglevel: restoring console_loglevel\n");
            set_console_loglevel(saved);
        }
    }

    fn post_unpatch(target: &mut Target<'_>) {
        callback_info("post_unpatch_callback");
        if target.prev_state(&CONSOLE_LOGLEVEL).is_some() {
            pr_info!("free_loglevel_state: keeping space to store console_loglevel\n");
            return;
        }
        if let Some(saved) = target
            .state(&CONSOLE_LOGLEVEL)
            .and_then(|mut state| state.take())
        {
            pr_info!("free_loglevel_state: freeing space for the stored console_loglevel\n");
            drop(saved);
        }
    }
}

struct RustLivepatchState;

impl LivepatchModule for RustLivepatchState {
    fn patch() -> &'static Patch {
        &PATCH
    }

    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(RustLivepatchState)
    }
}
