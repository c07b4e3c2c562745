// expect: a livepatch object needs at least one function or a callback
// SPDX-License-Identifier: GPL-2.0
//! An object with no function to patch.
use kernel::prelude::*;
module! { type: M, name: "empty_funcs", license: "GPL", }
kernel::klp_patch! {
    static PATCH = { objects: [ vmlinux { funcs: [] } ] };
}
struct M;
impl kernel::Module for M {
    fn init(module: &'static ThisModule) -> Result<Self> {
        // SAFETY: the last step of this init.
        unsafe { PATCH.enable(module) }?;
        Ok(M)
    }
}
