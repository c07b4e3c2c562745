// SPDX-License-Identifier: GPL-2.0

//! The callbacks demo, in Rust.
//!
//! Like `livepatch-callbacks-demo.c`: the patch has callbacks for vmlinux
//! and for two modules that may be loaded before or after it,
//! `livepatch_callbacks_mod` and `livepatch_callbacks_busymod` (whose work
//! function it also replaces). Every callback reports the object and, for a
//! module, its state, so the order the core runs them in can be watched.
//! `pre_patch_ret`, a negative errno given at `insmod`, makes the pre-patch
//! callbacks refuse, so the patch is not loaded. (Unlike the C demo's, the
//! parameter cannot be changed later: a Rust module's parameters are not
//! writable in sysfs yet, so a refusal for a module loaded later cannot be
//! shown. A positive value, not an errno, refuses with `EINVAL`.)

use kernel::{
    bindings,
    livepatch::{Callbacks, LivepatchModule, Patch, Target},
    loaded_module::ModuleState,
    prelude::*,
};

module! {
    type: RustLivepatchCallbacksDemo,
    name: "rust_livepatch_callbacks_demo",
    authors: ["klp-rs"],
    description: "Live patching demo for (un)patching callbacks, in Rust",
    license: "GPL",
    params: {
        pre_patch_ret: i32 {
            default: 0,
            description: "What the pre-patch callback returns (0 or a negative errno)",
        },
    },
}

fn state_text(state: ModuleState) -> &'static str {
    match state {
        ModuleState::Live => "[MODULE_STATE_LIVE] Normal state",
        ModuleState::Coming => "[MODULE_STATE_COMING] Full formed, running module_init",
        ModuleState::Going => "[MODULE_STATE_GOING] Going away",
        ModuleState::Unformed => "[MODULE_STATE_UNFORMED] Still setting it up",
    }
}

fn callback_info(callback: &str, target: &Target<'_>) {
    match target.module() {
        Some(module) => pr_info!(
            "{}: {} -> {}\n",
            callback,
            module.name(),
            state_text(module.state())
        ),
        None => pr_info!("{}: vmlinux\n", callback),
    }
}

struct Demo;

#[vtable]
impl Callbacks for Demo {
    fn pre_patch(target: &mut Target<'_>) -> Result {
        callback_info("pre_patch_callback", target);
        match module_parameters::pre_patch_ret.value() {
            0 => Ok(()),
            errno => Err(Error::from_errno(errno)),
        }
    }

    fn post_patch(target: &mut Target<'_>) {
        callback_info("post_patch_callback", target);
    }

    fn pre_unpatch(target: &mut Target<'_>) {
        callback_info("pre_unpatch_callback", target);
    }

    fn post_unpatch(target: &mut Target<'_>) {
        callback_info("post_unpatch_callback", target);
    }
}

extern "C" fn patched_work_func(_work: *mut bindings::work_struct) {
    pr_info!("patched_work_func\n");
}

kernel::klp_patch! {
    static PATCH = {
        objects: [
            vmlinux { funcs: [], callbacks: Demo },
            module "livepatch_callbacks_mod" { funcs: [], callbacks: Demo },
            module "livepatch_callbacks_busymod" {
                funcs: [
                    // SAFETY: `static void busymod_work_func(struct
                    // work_struct *work)` in livepatch-callbacks-busymod.c.
                    {
                        unsafe fn busymod_work_func(*mut bindings::work_struct)
                            => patched_work_func
                    },
                ],
                callbacks: Demo,
            },
        ],
    };
}

struct RustLivepatchCallbacksDemo;

impl LivepatchModule for RustLivepatchCallbacksDemo {
    fn patch() -> &'static Patch {
        &PATCH
    }

    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(RustLivepatchCallbacksDemo)
    }
}
