// SPDX-License-Identifier: GPL-2.0

//! klp-rs: the kernel live patching core in Rust.
//!
//! Built into `kernel/livepatch/livepatch.o`. C reaches it through the
//! functions `include/linux/livepatch.h` and `livepatch_sched.h` declare:
//! livepatch modules (`klp_enable_patch`, shadow variables, states), the
//! module loader (`klp_module_coming`/`going`, `klp_apply_section_relocs`),
//! and the scheduler, fork and exit paths (the transition's switch points).
//! The C structures modules hand in are reached through [`cview`], modules
//! through [`modules`], tasks through [`tasks`]; the few lines only C can
//! express are in `shim.c`.

use kernel::prelude::*;

#[path = "../../arch/x86/livepatch/mod.rs"]
mod arch;
mod cview;
mod ftrace;
mod func_stack;
mod kallsyms;
pub mod klp_names;
mod layout;
mod modules;
mod patch;
mod rcu_read;
mod registry;
mod reloc;
mod shadow;
pub mod shadow_sizing;
mod state;
pub mod state_rules;
mod sysfs;
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
        // First and infallible: the module loader calls in for every module
        // from now on, whatever fails below.
        registry::init();
        // Until these succeed no patch can be enabled: `klp_enable_patch`
        // needs the sysfs root, and `klp_is_patch_compatible` refuses.
        sysfs::init().inspect_err(|_| pr_err!("cannot create /sys/kernel/livepatch\n"))?;
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
