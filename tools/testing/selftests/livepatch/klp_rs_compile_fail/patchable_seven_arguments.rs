// expect: a patchable function takes at most six arguments
// SPDX-License-Identifier: GPL-2.0
//! A patchable function with an argument on the stack (the seventh), which
//! the entry's extra frame would move.
use kernel::prelude::*;
module! { type: M, name: "patchable_seven_arguments", license: "GPL", }
kernel::livepatch_patchable! {
    pub fn seven(a: u64, b: u64, c: u64, d: u64, e: u64, f: u64, g: u64) -> u64 {
        a + b + c + d + e + f + g
    }
}
struct M;
impl kernel::Module for M {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("{}\n", seven(1, 2, 3, 4, 5, 6, 7));
        Ok(M)
    }
}
