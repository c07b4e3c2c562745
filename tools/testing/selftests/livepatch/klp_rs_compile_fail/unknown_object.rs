// expect: an object is `vmlinux
// SPDX-License-Identifier: GPL-2.0
//! An object that is neither vmlinux nor a module by name.
use kernel::{bindings, ffi::{c_int, c_void}, prelude::*};
module! { type: M, name: "unknown_object", license: "GPL", }
extern "C" fn cmdline_proc_show_patched(_m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    0
}
kernel::klp_patch! {
    static PATCH = {
        objects: [ kernel { funcs: [ {
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
