// expect: error\[E0308\]: mismatched types
// SPDX-License-Identifier: GPL-2.0
//! A replacement whose signature is not the one declared for an original
//! the bindings do not have.
use kernel::{bindings, ffi::{c_int, c_void}, prelude::*};
module! { type: M, name: "signature_declared", license: "GPL", }
extern "C" fn cmdline_proc_show_patched(_m: *mut bindings::seq_file) -> c_int {
    0
}
kernel::klp_patch! {
    static PATCH = {
        objects: [ vmlinux { funcs: [ {
            // SAFETY: the original's signature, from fs/proc/cmdline.c.
            unsafe fn cmdline_proc_show(*mut bindings::seq_file, *mut c_void) -> c_int
                => cmdline_proc_show_patched
        } ] } ],
    };
}
struct M;
impl kernel::Module for M {
    fn init(module: &'static ThisModule) -> Result<Self> {
        // SAFETY: the last step of this init.
        unsafe { PATCH.enable(module) }?;
        Ok(M)
    }
}
