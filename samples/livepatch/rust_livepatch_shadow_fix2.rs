// SPDX-License-Identifier: GPL-2.0

//! The second shadow-variable fix of `livepatch-shadow-mod.ko`, in Rust.
//!
//! Loaded on top of `rust_livepatch_shadow_fix1`, like
//! `livepatch-shadow-fix2.c` on top of fix1: it replaces `dummy_check()` to
//! count, in a second shadow variable of each dummy
//! ([`Shadow<Atomic<i32>, SV_COUNTER>`](kernel::livepatch::Shadow), created
//! on the first check), how often the dummy was checked, and `dummy_free()`
//! to report that count and free both variables. The leak variable has the
//! type fix1 gives it, so each fix frees what the other attached.

use kernel::{
    bindings,
    ffi::{c_long, c_ulong},
    livepatch::{LivepatchModule, Patch, Shadow},
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
};

module! {
    type: RustLivepatchShadowFix2,
    name: "rust_livepatch_shadow_fix2",
    authors: ["klp-rs"],
    description: "Live patching demo for shadow variables, in Rust",
    license: "GPL",
}

/// The ids of the shadow variables: fix1's leak, and the counter. Not the C
/// fixes' 1 and 2, whose data types differ from ours.
const SV_LEAK: c_ulong = 0x5253_4c4b;
const SV_COUNTER: c_ulong = 0x5253_434e;

/// `struct dummy` of `livepatch-shadow-mod.c`.
#[repr(C)]
struct Dummy {
    list: bindings::list_head,
    jiffies_expire: c_ulong,
}

/// The leak variable's type, as `rust_livepatch_shadow_fix1` declares it:
/// the same layout and the same drop.
#[repr(transparent)]
struct Leak(#[allow(dead_code)] KBox<i32>);

impl Drop for Leak {
    fn drop(&mut self) {
        pr_info!("dummy_leak_dtor: prevented leak\n");
    }
}

// SAFETY: `SV_LEAK` holds `Leak`s of this module and
// `rust_livepatch_shadow_fix1` only (same layout and drop); this module's exit
// waits for the drops it queued.
static LEAK: Shadow<Leak, SV_LEAK> = unsafe { Shadow::new() };
// SAFETY: `SV_COUNTER` is this module's alone; the counter needs no dropping.
static COUNTER: Shadow<Atomic<i32>, SV_COUNTER> = unsafe { Shadow::new() };

kernel::klp_patch! {
    static PATCH = {
        objects: [
            module "livepatch_shadow_mod" {
                funcs: [
                    // SAFETY: `static bool dummy_check(struct dummy *d,
                    // unsigned long jiffies)` in livepatch-shadow-mod.c.
                    { unsafe fn dummy_check(*mut Dummy, c_ulong) -> bool => livepatch_fix2_dummy_check },
                    // SAFETY: `static void dummy_free(struct dummy *d)` there.
                    { unsafe fn dummy_free(*mut Dummy) => livepatch_fix2_dummy_free },
                ],
            },
        ],
    };
}

/// # Safety
///
/// Called by the module, in place of `dummy_check()`, with one of its live
/// dummies.
unsafe extern "C" fn livepatch_fix2_dummy_check(dummy: *mut Dummy, jiffies: c_ulong) -> bool {
    // As upstream's fix2: an allocation that does not wait.
    if let Ok(count) = COUNTER.get_or_insert_with(dummy, GFP_NOWAIT, || Atomic::new(0)) {
        count.fetch_add(1, Relaxed);
    }
    // SAFETY: the module passes one of its live dummies.
    let expire = unsafe { (*dummy).jiffies_expire };
    // `time_after(jiffies, expire)`.
    (expire.wrapping_sub(jiffies) as c_long) < 0
}

/// # Safety
///
/// Called by the module, in place of `dummy_free()`, with a dummy it took
/// off its list.
unsafe extern "C" fn livepatch_fix2_dummy_free(dummy: *mut Dummy) {
    if LEAK.get(dummy).is_some() {
        LEAK.detach(dummy);
    } else {
        pr_info!("dummy_free: dummy leaked!\n");
    }
    if let Some(count) = COUNTER.get(dummy) {
        pr_info!(
            "dummy_free: dummy check counter = {}\n",
            count.load(Relaxed)
        );
        drop(count);
        COUNTER.detach(dummy);
    }
    // SAFETY: the module hands over a dummy it took off its list, allocated
    // by `kzalloc()` or as a `KBox` by fix1.
    unsafe { bindings::kfree(dummy.cast()) };
}

struct RustLivepatchShadowFix2;

impl LivepatchModule for RustLivepatchShadowFix2 {
    fn patch() -> &'static Patch {
        &PATCH
    }

    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(RustLivepatchShadowFix2)
    }
}

impl Drop for RustLivepatchShadowFix2 {
    fn drop(&mut self) {
        COUNTER.detach_all();
        // The leaks this module detached: dropped by its code.
        LEAK.wait_for_drops();
    }
}
