// SPDX-License-Identifier: GPL-2.0

//! C's struct layouts, as the C compiler chose them (from shim.c).
//!
//! bindgen's `task_struct` is not C's in every configuration: a struct that
//! is empty because its option is off takes no space in C but one byte in
//! Rust, shifting every later field. Task fields are therefore read at the
//! offsets C reports, and the other structs the core reads through bindgen
//! are checked at boot; on a mismatch the core refuses to start rather than
//! read the wrong bytes.

use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};

use kernel::bindings;
use kernel::prelude::*;

/// Mirrors `klp_rs_c_layout[]` in shim.c, field for field.
#[repr(C)]
pub(crate) struct CLayout {
    pub(crate) task_ti_flags: usize,
    pub(crate) task_flags: usize,
    pub(crate) task_pid: usize,
    pub(crate) task_tasks: usize,
    pub(crate) task_signal: usize,
    pub(crate) task_thread_node: usize,
    pub(crate) task_patch_state: usize,
    pub(crate) task_trace_recursion: usize,
    pub(crate) signal_thread_head: usize,
    func_size: usize,
    func_new_func: usize,
    func_stack_node: usize,
    func_nop: usize,
    func_transition: usize,
    object_size: usize,
    object_func_list: usize,
    object_patched: usize,
    patch_size: usize,
    patch_obj_list: usize,
    patch_forced: usize,
    state_size: usize,
    ftrace_ops_size: usize,
    module_name: usize,
}

extern "C" {
    #[link_name = "klp_rs_c_layout"]
    static C_LAYOUT: CLayout;
}

/// The C layout.
#[inline(always)]
pub(crate) fn c() -> &'static CLayout {
    // SAFETY: a constant array defined in shim.c with exactly `CLayout`'s
    // fields, all `unsigned long`; never written.
    unsafe { &C_LAYOUT }
}

/// Set once [`verify`] found bindgen's layouts to be C's.
static VERIFIED: AtomicBool = AtomicBool::new(false);

/// Whether the layouts were checked and match; nothing is patched otherwise.
pub(crate) fn verified() -> bool {
    VERIFIED.load(Relaxed)
}

/// Checks that bindgen's view of the structs read through it is C's.
pub(crate) fn verify() -> Result {
    use bindings::{ftrace_ops, klp_func, klp_object, klp_patch, klp_state, module};
    let c = c();
    let checks: [(&str, usize, usize); 14] = [
        ("klp_func size", c.func_size, size_of::<klp_func>()),
        (
            "klp_func.new_func",
            c.func_new_func,
            offset_of!(klp_func, new_func),
        ),
        (
            "klp_func.stack_node",
            c.func_stack_node,
            offset_of!(klp_func, stack_node),
        ),
        ("klp_func.nop", c.func_nop, offset_of!(klp_func, nop)),
        (
            "klp_func.transition",
            c.func_transition,
            offset_of!(klp_func, transition),
        ),
        ("klp_object size", c.object_size, size_of::<klp_object>()),
        (
            "klp_object.func_list",
            c.object_func_list,
            offset_of!(klp_object, func_list),
        ),
        (
            "klp_object.patched",
            c.object_patched,
            offset_of!(klp_object, patched),
        ),
        ("klp_patch size", c.patch_size, size_of::<klp_patch>()),
        (
            "klp_patch.obj_list",
            c.patch_obj_list,
            offset_of!(klp_patch, obj_list),
        ),
        (
            "klp_patch.forced",
            c.patch_forced,
            offset_of!(klp_patch, forced),
        ),
        ("klp_state size", c.state_size, size_of::<klp_state>()),
        (
            "ftrace_ops size",
            c.ftrace_ops_size,
            size_of::<ftrace_ops>(),
        ),
        ("module.name", c.module_name, offset_of!(module, name)),
    ];
    let mut ok = true;
    for (what, c_value, rust_value) in checks {
        if c_value != rust_value {
            pr_err!(
                "layout of {} differs: C {}, bindgen {}\n",
                what,
                c_value,
                rust_value
            );
            ok = false;
        }
    }
    if ok {
        VERIFIED.store(true, Relaxed);
        Ok(())
    } else {
        Err(EINVAL)
    }
}
