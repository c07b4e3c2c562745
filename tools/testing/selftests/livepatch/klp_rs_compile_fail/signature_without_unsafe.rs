// expect: a signature written by hand must be `unsafe fn`
// SPDX-License-Identifier: GPL-2.0
//! A signature stated for an original the bindings do not have, without
//! `unsafe`: only the author can vouch for it, so the macro insists.
use kernel::{bindings, ffi::{c_int, c_void}, prelude::*};
module! { type: M, name: "signature_without_unsafe", license: "GPL", }
extern "C" fn cmdline_proc_show_patched(_m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    0
}
kernel::klp_patch! {
    static PATCH = {
        objects: [ vmlinux { funcs: [ {
            fn cmdline_proc_show(*mut bindings::seq_file, *mut c_void) -> c_int
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
