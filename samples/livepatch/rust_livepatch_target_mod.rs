// SPDX-License-Identifier: GPL-2.0

//! A Rust module with a function that livepatch can replace.
//!
//! An ordinary Rust function has no ftrace site (rustc emits no
//! `__fentry__` call), so livepatch cannot redirect it.
//! [`kernel::livepatch_patchable!`] gives `rust_klp_target_answer()` the
//! entry of a C function. The module reports the answer when it loads and
//! when it is removed; `rust_livepatch_target_patch` changes the answer.
//! The answer it reports is the patched one while that patch is enabled,
//! also for a copy of this module loaded after the patch.

use kernel::prelude::*;

module! {
    type: RustLivepatchTargetMod,
    name: "rust_livepatch_target_mod",
    authors: ["klp-rs"],
    description: "Live patching sample: a Rust function as a patch target",
    license: "GPL",
}

kernel::livepatch_patchable! {
    /// The answer, 42 unless a livepatch says otherwise.
    pub fn rust_klp_target_answer() -> u32 {
        42
    }
}

struct RustLivepatchTargetMod;

impl kernel::Module for RustLivepatchTargetMod {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("answer at init: {}\n", rust_klp_target_answer());
        Ok(RustLivepatchTargetMod)
    }
}

impl Drop for RustLivepatchTargetMod {
    fn drop(&mut self) {
        pr_info!("answer at exit: {}\n", rust_klp_target_answer());
    }
}
