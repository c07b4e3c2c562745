// SPDX-License-Identifier: GPL-2.0

//! The first shadow-variable fix of `livepatch-shadow-mod.ko`, in Rust.
//!
//! The C module allocates a `struct dummy` every second, with an extra
//! allocation it forgets (a leak), and frees expired dummies. This patch,
//! like `livepatch-shadow-fix1.c`, replaces `dummy_alloc()` to keep the extra
//! allocation in a shadow variable of the dummy, and `dummy_free()` to free
//! it with the dummy. The shadow variable is a typed
//! [`Shadow<Leak, SV_LEAK>`](kernel::livepatch::Shadow): the leaked memory
//! is a `KBox` that the variable's `Drop` frees, with no `void *` anywhere.
//! `rust_livepatch_shadow_fix2` adds a counter on top.

use core::ptr::null_mut;
use kernel::{
    bindings,
    ffi::c_ulong,
    livepatch::{LivepatchModule, Patch, Shadow},
    prelude::*,
    time::msecs_to_jiffies,
};

module! {
    type: RustLivepatchShadowFix1,
    name: "rust_livepatch_shadow_fix1",
    authors: ["klp-rs"],
    description: "Live patching demo for shadow variables, in Rust",
    license: "GPL",
}

/// The id of the leak's shadow variable. Not the C fixes' 1: their data is
/// an `int *`, ours a `Leak`, so the two pairs must not see each other's
/// variables.
const SV_LEAK: c_ulong = 0x5253_4c4b;
/// How long a dummy lives, as in `livepatch-shadow-mod.c`.
const EXPIRE_MS: u32 = 12_000;

/// `struct dummy` of `livepatch-shadow-mod.c`.
#[repr(C)]
struct Dummy {
    list: bindings::list_head,
    jiffies_expire: c_ulong,
}

/// The memory `dummy_alloc()` used to leak, freed with its dummy.
/// `rust_livepatch_shadow_fix2` declares the same type: the same layout
/// (`repr(transparent)` over a `KBox<i32>`) and the same drop.
#[repr(transparent)]
struct Leak(#[allow(dead_code)] KBox<i32>);

impl Drop for Leak {
    fn drop(&mut self) {
        pr_info!("dummy_leak_dtor: prevented leak\n");
    }
}

// SAFETY: `SV_LEAK` is used by this module and `rust_livepatch_shadow_fix2`
// only, both with `Leak` (same layout and drop); this module's exit detaches
// them all, which also waits for the drops.
static LEAK: Shadow<Leak, SV_LEAK> = unsafe { Shadow::new() };

kernel::klp_patch! {
    static PATCH = {
        objects: [
            module "livepatch_shadow_mod" {
                funcs: [
                    // SAFETY: `static struct dummy *dummy_alloc(void)` in
                    // livepatch-shadow-mod.c.
                    { unsafe fn dummy_alloc() -> *mut Dummy => livepatch_fix1_dummy_alloc },
                    // SAFETY: `static void dummy_free(struct dummy *d)` there.
                    { unsafe fn dummy_free(*mut Dummy) => livepatch_fix1_dummy_free },
                ],
            },
        ],
    };
}

fn jiffies() -> c_ulong {
    // SAFETY: `jiffies` is a kernel global, always readable; the timer tick
    // changes it, hence the volatile read.
    unsafe { (&raw const bindings::jiffies).read_volatile() }
}

extern "C" fn livepatch_fix1_dummy_alloc() -> *mut Dummy {
    let dummy = Dummy {
        // SAFETY: all-zero is a valid `list_head`; the module links it.
        list: unsafe { core::mem::zeroed() },
        jiffies_expire: jiffies().wrapping_add(msecs_to_jiffies(EXPIRE_MS)),
    };
    let Ok(dummy) = KBox::new(dummy, GFP_KERNEL) else {
        return null_mut();
    };
    let Ok(memory) = KBox::new(0, GFP_KERNEL) else {
        return null_mut();
    };
    let expire = dummy.jiffies_expire;
    // The C module frees its dummies with `kfree()`, which frees a
    // `KBox<Dummy>`'s memory.
    let dummy = KBox::into_raw(dummy);
    if LEAK.attach(dummy, GFP_KERNEL, Leak(memory)).is_err() {
        pr_err!("dummy_alloc: failed to allocate shadow variable for the leaking pointer\n");
        // SAFETY: from `KBox::into_raw` above, never handed out.
        drop(unsafe { KBox::from_raw(dummy) });
        return null_mut();
    }
    pr_info!("dummy_alloc: dummy expires @ {:x}\n", expire);
    dummy
}

/// # Safety
///
/// Called by the module, in place of `dummy_free()`, with a dummy it took
/// off its list.
unsafe extern "C" fn livepatch_fix1_dummy_free(dummy: *mut Dummy) {
    if LEAK.get(dummy).is_some() {
        LEAK.detach(dummy);
    } else {
        pr_info!("dummy_free: dummy leaked!\n");
    }
    // SAFETY: the module hands over a dummy it took off its list, allocated
    // by `kzalloc()` or, under this patch, as a `KBox`.
    unsafe { bindings::kfree(dummy.cast()) };
}

struct RustLivepatchShadowFix1;

impl LivepatchModule for RustLivepatchShadowFix1 {
    fn patch() -> &'static Patch {
        &PATCH
    }

    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(RustLivepatchShadowFix1)
    }
}

impl Drop for RustLivepatchShadowFix1 {
    fn drop(&mut self) {
        // The leaks of dummies still alive, and the drops still queued.
        LEAK.detach_all();
    }
}
