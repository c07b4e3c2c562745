// expect: cannot borrow `\*target` as mutable more than once at a time
// SPDX-License-Identifier: GPL-2.0
//! A callback holding its patch's state and the replaced patch's at once:
//! two handles that could free data the other still reads.
use kernel::{
    livepatch::{Callbacks, LivepatchModule, Patch, StateData, Target},
    prelude::*,
};
module! { type: M, name: "state_data_two_at_once", license: "GPL", }
// SAFETY: only this test uses state 7.
const SAVED: StateData<u64, 7> = unsafe { StateData::new() };
struct Takeover;
#[vtable]
impl Callbacks for Takeover {
    fn post_patch(target: &mut Target<'_>) {
        let prev = target.prev_state(&SAVED);
        let this = target.state(&SAVED);
        if let (Some(mut prev), Some(mut this)) = (prev, this) {
            if let Some(data) = prev.take() {
                this.set(data);
            }
        }
    }
}
kernel::klp_patch! {
    static PATCH = {
        objects: [ vmlinux { funcs: [], callbacks: Takeover } ],
        states: [ { id: SAVED.id(), version: 1 } ],
        replace: true,
    };
}
struct M;
impl LivepatchModule for M {
    fn patch() -> &'static Patch {
        &PATCH
    }
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(M)
    }
}
