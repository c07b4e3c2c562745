// expect: a klp_state id must not be 0
// SPDX-License-Identifier: GPL-2.0
//! A state with id 0, which would end the list of states.
use kernel::{bindings, ffi::{c_int, c_void}, prelude::*};
module! { type: M, name: "state_id_zero", license: "GPL", }
extern "C" fn cmdline_proc_show_patched(_m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    0
}
kernel::klp_patch! {
    static PATCH = {
        objects: [ vmlinux { funcs: [ {
            // SAFETY: the original's signature, from fs/proc/cmdline.c.
            unsafe fn cmdline_proc_show(*mut bindings::seq_file, *mut c_void) -> c_int
                => cmdline_proc_show_patched
        } ] } ],
        states: [ { id: 0, version: 1 } ],
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
