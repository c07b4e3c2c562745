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
    pub(crate) task_tasks: usize,
    pub(crate) task_signal: usize,
    pub(crate) task_thread_node: usize,
    pub(crate) task_patch_state: usize,
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
    pub(crate) module_name: usize,
    func_old_name: usize,
    func_old_func: usize,
    func_old_size: usize,
    func_new_size: usize,
    func_patched: usize,
    func_node: usize,
    object_name: usize,
    object_mod: usize,
    object_node: usize,
    object_dynamic: usize,
    object_callbacks: usize,
    patch_mod: usize,
    patch_list: usize,
    patch_states: usize,
    patch_replace: usize,
    patch_enabled: usize,
    ftrace_ops_func: usize,
    ftrace_ops_flags: usize,
    ftrace_regs_ip: usize,
    cpumask_bits: usize,
    pub(crate) module_state: usize,
    pub(crate) module_klp: usize,
    pub(crate) module_klp_alive: usize,
    pub(crate) module_klp_info: usize,
    pub(crate) module_core_strtab: usize,
    /// `MODULE_NAME_LEN`, which bindgen cannot evaluate.
    pub(crate) module_name_len: usize,
    patch_kobj: usize,
    patch_objs: usize,
    patch_free_work: usize,
    patch_finish: usize,
    object_kobj: usize,
    object_funcs: usize,
    func_kobj: usize,
    func_old_sympos: usize,
    modinfo_sechdrs: usize,
    modinfo_secstrings: usize,
    modinfo_symndx: usize,
    kobj_type_size: usize,
    kobj_type_default_groups: usize,
    kobj_attribute_size: usize,
    kobj_attribute_store: usize,
    attribute_group_attrs: usize,
    /// Entries of each per-CPU stack trace buffer.
    pub(crate) max_stack_entries: usize,
    /// How many entries C's array has: this struct's field count.
    entries: usize,
}

// The same count as shim.c's static_assert: the offsets are read before
// `verify` runs (the module loader and the fork and exit paths call in from
// early boot), so the two lists must agree at compile time.
const _: () = assert!(size_of::<CLayout>() == 65 * size_of::<usize>());

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
    use bindings::{
        __arch_ftrace_regs, attribute_group, cpumask, ftrace_ops, klp_func, klp_modinfo,
        klp_object, klp_patch, klp_state, kobj_attribute, kobj_type,
    };
    let c = c();
    // Checked first: the other fields are only meaningful if both sides
    // list the same entries.
    if c.entries != size_of::<CLayout>() / size_of::<usize>() {
        pr_err!("klp_rs_c_layout[] in shim.c does not match layout.rs\n");
        return Err(EINVAL);
    }
    let checks = [
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
        (
            "klp_func.old_name",
            c.func_old_name,
            offset_of!(klp_func, old_name),
        ),
        (
            "klp_func.old_func",
            c.func_old_func,
            offset_of!(klp_func, old_func),
        ),
        (
            "klp_func.old_size",
            c.func_old_size,
            offset_of!(klp_func, old_size),
        ),
        (
            "klp_func.new_size",
            c.func_new_size,
            offset_of!(klp_func, new_size),
        ),
        (
            "klp_func.patched",
            c.func_patched,
            offset_of!(klp_func, patched),
        ),
        ("klp_func.node", c.func_node, offset_of!(klp_func, node)),
        (
            "klp_object.name",
            c.object_name,
            offset_of!(klp_object, name),
        ),
        ("klp_object.mod", c.object_mod, offset_of!(klp_object, mod_)),
        (
            "klp_object.node",
            c.object_node,
            offset_of!(klp_object, node),
        ),
        (
            "klp_object.dynamic",
            c.object_dynamic,
            offset_of!(klp_object, dynamic),
        ),
        (
            "klp_object.callbacks",
            c.object_callbacks,
            offset_of!(klp_object, callbacks),
        ),
        ("klp_patch.mod", c.patch_mod, offset_of!(klp_patch, mod_)),
        ("klp_patch.list", c.patch_list, offset_of!(klp_patch, list)),
        (
            "klp_patch.states",
            c.patch_states,
            offset_of!(klp_patch, states),
        ),
        (
            "klp_patch.replace",
            c.patch_replace,
            offset_of!(klp_patch, replace),
        ),
        (
            "klp_patch.enabled",
            c.patch_enabled,
            offset_of!(klp_patch, enabled),
        ),
        (
            "ftrace_ops.func",
            c.ftrace_ops_func,
            offset_of!(ftrace_ops, func),
        ),
        (
            "ftrace_ops.flags",
            c.ftrace_ops_flags,
            offset_of!(ftrace_ops, flags),
        ),
        (
            "pt_regs.ip",
            c.ftrace_regs_ip,
            offset_of!(__arch_ftrace_regs, regs.ip),
        ),
        ("cpumask.bits", c.cpumask_bits, offset_of!(cpumask, bits)),
        ("klp_patch.kobj", c.patch_kobj, offset_of!(klp_patch, kobj)),
        ("klp_patch.objs", c.patch_objs, offset_of!(klp_patch, objs)),
        (
            "klp_patch.free_work",
            c.patch_free_work,
            offset_of!(klp_patch, free_work),
        ),
        (
            "klp_patch.finish",
            c.patch_finish,
            offset_of!(klp_patch, finish),
        ),
        (
            "klp_object.kobj",
            c.object_kobj,
            offset_of!(klp_object, kobj),
        ),
        (
            "klp_object.funcs",
            c.object_funcs,
            offset_of!(klp_object, funcs),
        ),
        ("klp_func.kobj", c.func_kobj, offset_of!(klp_func, kobj)),
        (
            "klp_func.old_sympos",
            c.func_old_sympos,
            offset_of!(klp_func, old_sympos),
        ),
        (
            "klp_modinfo.sechdrs",
            c.modinfo_sechdrs,
            offset_of!(klp_modinfo, sechdrs),
        ),
        (
            "klp_modinfo.secstrings",
            c.modinfo_secstrings,
            offset_of!(klp_modinfo, secstrings),
        ),
        (
            "klp_modinfo.symndx",
            c.modinfo_symndx,
            offset_of!(klp_modinfo, symndx),
        ),
        ("kobj_type size", c.kobj_type_size, size_of::<kobj_type>()),
        (
            "kobj_type.default_groups",
            c.kobj_type_default_groups,
            offset_of!(kobj_type, default_groups),
        ),
        (
            "kobj_attribute size",
            c.kobj_attribute_size,
            size_of::<kobj_attribute>(),
        ),
        (
            "kobj_attribute.store",
            c.kobj_attribute_store,
            offset_of!(kobj_attribute, __bindgen_anon_2),
        ),
        (
            "attribute_group.attrs",
            c.attribute_group_attrs,
            offset_of!(attribute_group, __bindgen_anon_2),
        ),
        (
            "MODULE_NAME_LEN",
            c.module_name_len,
            crate::modules::MODULE_NAME_LEN,
        ),
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
