// expect: an argument of a patchable function is at most 8 bytes
// SPDX-License-Identifier: GPL-2.0
//! A patchable function with an argument wider than a register.
use kernel::prelude::*;
module! { type: M, name: "patchable_wide_argument", license: "GPL", }
kernel::livepatch_patchable! {
    pub fn wide(a: u128) -> u64 {
        a as u64
    }
}
struct M;
impl kernel::Module for M {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("{}\n", wide(1));
        Ok(M)
    }
}
