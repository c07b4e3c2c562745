// SPDX-License-Identifier: GPL-2.0

//! A livepatch, in Rust, of functions in a Rust module.
//!
//! It replaces `rust_klp_target_answer()` of `rust_livepatch_target_mod`
//! (which declares it with [`kernel::livepatch_patchable!`]) to answer 43,
//! and `rust_klp_target_sleep()` not to sleep. The object is a module, so
//! the patch applies when that module is loaded, before or after the patch
//! is.

use kernel::{
    livepatch::{LivepatchModule, Patch},
    prelude::*,
};

module! {
    type: RustLivepatchTargetPatch,
    name: "rust_livepatch_target_patch",
    authors: ["klp-rs"],
    description: "Live patching sample: a livepatch of Rust functions",
    license: "GPL",
}

kernel::klp_patch! {
    static PATCH = {
        objects: [
            module "rust_livepatch_target_mod" {
                funcs: [
                    // SAFETY: `pub fn rust_klp_target_answer() -> u32` in
                    // rust_livepatch_target_mod.rs, `extern "C"` through
                    // `livepatch_patchable!`.
                    { unsafe fn rust_klp_target_answer() -> u32 => answer_patched },
                    // SAFETY: `pub fn rust_klp_target_sleep(ms: u32) -> u32`
                    // there, `extern "C"` as well.
                    { unsafe fn rust_klp_target_sleep(u32) -> u32 => sleep_patched },
                ],
            },
        ],
    };
}

/// The patched answer.
extern "C" fn answer_patched() -> u32 {
    43
}

/// The patched sleep: none.
extern "C" fn sleep_patched(_ms: u32) -> u32 {
    0
}

struct RustLivepatchTargetPatch;

impl LivepatchModule for RustLivepatchTargetPatch {
    fn patch() -> &'static Patch {
        &PATCH
    }

    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(RustLivepatchTargetPatch)
    }
}
