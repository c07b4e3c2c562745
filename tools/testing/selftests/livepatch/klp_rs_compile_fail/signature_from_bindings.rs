// expect: error\[E0308\]: mismatched types
// SPDX-License-Identifier: GPL-2.0
//! A replacement whose signature is not that of the original, which the
//! bindings declare (`long schedule_timeout(long timeout)`).
use kernel::prelude::*;
module! { type: M, name: "signature_from_bindings", license: "GPL", }
extern "C" fn schedule_timeout_patched(_timeout: u32) -> i64 {
    0
}
kernel::klp_patch! {
    static PATCH = {
        objects: [ vmlinux { funcs: [ { schedule_timeout => schedule_timeout_patched } ] } ],
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
