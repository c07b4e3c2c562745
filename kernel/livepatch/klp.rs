// SPDX-License-Identifier: GPL-2.0

//! klp-rs: the kernel live patching core in Rust.
//!
//! Built into `kernel/livepatch/livepatch.o` beside the parts of the core
//! still written in C (`core.c`, `patch.c`, `transition.c`). They call in
//! through `include/linux/livepatch.h` and the internal headers (`state.h`);
//! the C-owned data this crate reads is reached through [`cview`].

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
        // On a mismatch no patch can be applied (`klp_patch_object` refuses).
        layout::verify()
            .inspect_err(|_| pr_err!("bindgen layouts differ from C: patching disabled\n"))?;
        shadow::init().inspect_err(|err| {
            pr_err!(
                "cannot set up shadow variables ({:?}): every shadow allocation will fail\n",
                err
            )
        })?;
        transition::init()
            .inspect_err(|err| pr_err!("cannot set up transition work ({:?})\n", err))?;
        Ok(Livepatch)
    }
}
