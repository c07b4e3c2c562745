// expect: builds
// SPDX-License-Identifier: GPL-2.0
//! Every form klp_patch! takes, which must build: an original from the
//! bindings, one with a written signature and a position, a module object
//! with callbacks, states (one with typed data), replace; enabled from an
//! init written by hand.
use kernel::{
    bindings,
    ffi::{c_int, c_long, c_void},
    livepatch::{Callbacks, StateData, Target},
    prelude::*,
};
module! { type: M, name: "builds_every_form", license: "GPL", }
extern "C" fn schedule_timeout_patched(timeout: c_long) -> c_long {
    timeout
}
extern "C" fn cmdline_proc_show_patched(_m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    0
}
extern "C" fn work_func_patched(_work: *mut bindings::work_struct) {}
// SAFETY: only this test uses state 2.
const COUNTER: StateData<u64, 2> = unsafe { StateData::new() };
struct Demo;
#[vtable]
impl Callbacks for Demo {
    fn pre_patch(target: &mut Target<'_>) -> Result {
        pr_info!("pre_patch {:?}\n", target.object().name());
        let taken = target.prev_state(&COUNTER).and_then(|mut prev| prev.take());
        let mut state = target.state(&COUNTER).ok_or(EINVAL)?;
        state.set(match taken {
            Some(counter) => counter,
            None => KBox::new(0, GFP_KERNEL)?,
        });
        let version = u64::from(state.version());
        *state.get_mut().ok_or(EINVAL)? += version;
        Ok(())
    }
    fn post_unpatch(_target: &mut Target<'_>) {}
}
kernel::klp_patch! {
    static PATCH = {
        objects: [
            vmlinux {
                funcs: [
                    { schedule_timeout => schedule_timeout_patched },
                    {
                        // SAFETY: the original's signature, from fs/proc/cmdline.c.
                        unsafe fn cmdline_proc_show(*mut bindings::seq_file, *mut c_void) -> c_int
                            => cmdline_proc_show_patched, sympos = 1
                    },
                ],
            },
            module "livepatch_callbacks_mod" {
                funcs: [
                    {
                        // SAFETY: `static void callbacks_mod_work_func(struct work_struct *)`.
                        unsafe fn callbacks_mod_work_func(*mut bindings::work_struct)
                            => work_func_patched
                    },
                ],
                callbacks: Demo,
            },
        ],
        states: [ { id: 1, version: 2 }, { id: COUNTER.id(), version: 1 } ],
        replace: true,
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
