// SPDX-License-Identifier: GPL-2.0

//! The livepatch sample, written in Rust.
//!
//! It does what `livepatch-sample.c` does: it replaces `cmdline_proc_show()`,
//! so that `cat /proc/cmdline` prints "this has been live patched" while the
//! patch is enabled. The patch is a static that [`kernel::klp_patch!`]
//! builds at compile time, and the module's init hands it to the core with
//! `klp_enable_patch()`, as a C livepatch module does:
//!
//! ```text
//! insmod rust_livepatch_sample.ko
//! cat /proc/cmdline
//! echo 0 > /sys/kernel/livepatch/rust_livepatch_sample/enabled
//! rmmod rust_livepatch_sample
//! ```

use kernel::{
    bindings,
    ffi::{c_int, c_void},
    livepatch::{LivepatchModule, Patch},
    prelude::*,
    seq_file::SeqFile,
    seq_print,
};

module! {
    type: RustLivepatchSample,
    name: "rust_livepatch_sample",
    authors: ["klp-rs"],
    description: "Live patching sample in Rust: /proc/cmdline",
    license: "GPL",
}

kernel::klp_patch! {
    static PATCH = {
        objects: [
            vmlinux {
                funcs: [
                    // SAFETY: `static int cmdline_proc_show(struct seq_file *m,
                    // void *v)` in fs/proc/cmdline.c.
                    {
                        unsafe fn cmdline_proc_show(*mut bindings::seq_file, *mut c_void) -> c_int
                            => livepatch_cmdline_proc_show
                    },
                ],
            },
        ],
    };
}

/// What `/proc/cmdline` shows while the patch is enabled.
extern "C" fn livepatch_cmdline_proc_show(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: the proc file's show callback gets a live `seq_file`.
    let m = unsafe { SeqFile::from_raw(m) };
    seq_print!(m, "{}\n", "this has been live patched");
    0
}

struct RustLivepatchSample;

impl LivepatchModule for RustLivepatchSample {
    fn patch() -> &'static Patch {
        &PATCH
    }

    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(RustLivepatchSample)
    }
}
