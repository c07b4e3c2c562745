// SPDX-License-Identifier: GPL-2.0

//! klp-rs: the kernel live patching core in Rust.
//!
//! Built into `kernel/livepatch/livepatch.o` beside the part of the core
//! still written in C (`core.c`), which calls in through
//! `include/linux/livepatch.h` and the internal headers (`patch.h`,
//! `transition.h`, `state.h`); the C-owned patches this crate reads are
//! reached through [`cview`], tasks through [`tasks`], and the few lines only
//! C can express are in `shim.c`.

use kernel::prelude::*;

#[path = "../../arch/x86/livepatch/mod.rs"]
mod arch;
mod cview;
mod ftrace;
mod func_stack;
mod layout;
mod patch;
mod rcu_read;
mod shadow;
pub mod shadow_sizing;
mod state;
pub mod state_rules;
mod tasks;
mod transition;

module! {
    type: Livepatch,
    name: "livepatch",
    authors: ["klp-rs developers"],
    description: "Kernel live patching core",
    license: "GPL",
}

struct Livepatch;

impl kernel::Module for Livepatch {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // Until both succeed no patch can be applied: `klp_is_patch_compatible`,
        // the first call `klp_enable_patch` makes into Rust, refuses.
        layout::verify()
            .inspect_err(|_| pr_err!("bindgen layouts differ from C: patching disabled\n"))?;
        transition::init()
            .inspect_err(|err| pr_err!("cannot set up transition work ({:?})\n", err))?;
        shadow::init().inspect_err(|err| {
            pr_err!(
                "cannot set up shadow variables ({:?}): every shadow allocation will fail\n",
                err
            )
        })?;
        Ok(Livepatch)
    }
}
