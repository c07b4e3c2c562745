// SPDX-License-Identifier: GPL-2.0

//! Build-time checks that bindgen lays out the C structs the core reads as C
//! does.
//!
//! The core, and the kernel crate's abstractions it uses, read
//! `task_struct`, `struct module` and the livepatch structs through bindgen's
//! definitions. The kernel builds bindgen's output without its layout tests,
//! and bindgen has been wrong here before: it dropped the alignment of the
//! empty, cache-line aligned `struct sched_statistics` (`CONFIG_SCHEDSTATS=n`),
//! which moved every later `task_struct` field 48 bytes (fixed at the root in
//! `rust/bindgen_parameters`). So each size and offset read from Rust is
//! compared with the value clang computes for C
//! (`rust/bindings/klp_rs_layout.h`); a mismatch fails the build. (These
//! checks run where the core is built, `CONFIG_LIVEPATCH=y`; the kernel
//! crate's own `Task` accessors are covered in every configuration by the
//! `rust_task` KUnit cases.)

use core::mem::{offset_of, size_of};

use kernel::bindings;

/// `sizeof` of a struct, as C's.
macro_rules! size_as_in_c {
    ($($ty:ident == $c:ident;)*) => {
        $(const _: () = assert!(size_of::<bindings::$ty>() == bindings::$c);)*
    };
}

/// `offsetof` of a field (a path for a nested one), as C's.
macro_rules! offset_as_in_c {
    ($($ty:ident . $($field:ident).+ == $c:ident;)*) => {
        $(const _: () = assert!(offset_of!(bindings::$ty, $($field).+) == bindings::$c);)*
    };
}

size_as_in_c! {
    task_struct == KLP_C_SIZE_TASK;
    module == KLP_C_SIZE_MODULE;
    klp_func == KLP_C_SIZE_KLP_FUNC;
    klp_object == KLP_C_SIZE_KLP_OBJECT;
    klp_patch == KLP_C_SIZE_KLP_PATCH;
    klp_state == KLP_C_SIZE_KLP_STATE;
    klp_modinfo == KLP_C_SIZE_KLP_MODINFO;
    ftrace_ops == KLP_C_SIZE_FTRACE_OPS;
    kobj_type == KLP_C_SIZE_KOBJ_TYPE;
    kobj_attribute == KLP_C_SIZE_KOBJ_ATTRIBUTE;
}

offset_as_in_c! {
    task_struct.flags == KLP_C_OFFSET_TASK_FLAGS;
    task_struct.tasks == KLP_C_OFFSET_TASK_TASKS;
    task_struct.signal == KLP_C_OFFSET_TASK_SIGNAL;
    task_struct.thread_node == KLP_C_OFFSET_TASK_THREAD_NODE;
    task_struct.patch_state == KLP_C_OFFSET_TASK_PATCH_STATE;
    signal_struct.thread_head == KLP_C_OFFSET_SIGNAL_THREAD_HEAD;
    module.name == KLP_C_OFFSET_MODULE_NAME;
    module.state == KLP_C_OFFSET_MODULE_STATE;
    module.klp == KLP_C_OFFSET_MODULE_KLP;
    module.klp_alive == KLP_C_OFFSET_MODULE_KLP_ALIVE;
    module.klp_info == KLP_C_OFFSET_MODULE_KLP_INFO;
    module.core_kallsyms.strtab == KLP_C_OFFSET_MODULE_CORE_STRTAB;
    klp_func.kobj == KLP_C_OFFSET_KLP_FUNC_KOBJ;
    klp_func.node == KLP_C_OFFSET_KLP_FUNC_NODE;
    klp_func.stack_node == KLP_C_OFFSET_KLP_FUNC_STACK_NODE;
    klp_func.transition == KLP_C_OFFSET_KLP_FUNC_TRANSITION;
    klp_object.kobj == KLP_C_OFFSET_KLP_OBJECT_KOBJ;
    klp_object.func_list == KLP_C_OFFSET_KLP_OBJECT_FUNC_LIST;
    klp_object.patched == KLP_C_OFFSET_KLP_OBJECT_PATCHED;
    klp_patch.kobj == KLP_C_OFFSET_KLP_PATCH_KOBJ;
    klp_patch.free_work == KLP_C_OFFSET_KLP_PATCH_FREE_WORK;
    klp_patch.finish == KLP_C_OFFSET_KLP_PATCH_FINISH;
    klp_patch.forced == KLP_C_OFFSET_KLP_PATCH_FORCED;
    ftrace_ops.flags == KLP_C_OFFSET_FTRACE_OPS_FLAGS;
    __arch_ftrace_regs.regs.ip == KLP_C_OFFSET_FTRACE_REGS_IP;
    // The store callback and the attribute array sit in anonymous unions.
    kobj_attribute.__bindgen_anon_2 == KLP_C_OFFSET_KOBJ_ATTRIBUTE_STORE;
    attribute_group.__bindgen_anon_2 == KLP_C_OFFSET_ATTRIBUTE_GROUP_ATTRS;
}
