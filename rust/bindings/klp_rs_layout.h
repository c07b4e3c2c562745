/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Where C lays out the fields the Rust livepatch core reads through
 * bindgen's structs, as constants bindgen evaluates with clang. The core
 * compares them with bindgen's own layout at build time
 * (kernel/livepatch/layout.rs): bindgen has dropped an alignment before (see
 * sched_statistics in rust/bindgen_parameters), and the build runs without
 * bindgen's layout tests.
 */
#ifndef _KLP_RS_LAYOUT_H
#define _KLP_RS_LAYOUT_H

#include <linux/ftrace.h>
#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/sched/signal.h>

#define KLP_RS_SIZE(name, type) \
	const size_t RUST_CONST_HELPER_KLP_C_SIZE_##name = sizeof(type)
#define KLP_RS_OFFSET(name, type, field) \
	const size_t RUST_CONST_HELPER_KLP_C_OFFSET_##name = offsetof(type, field)

KLP_RS_SIZE(TASK, struct task_struct);
KLP_RS_OFFSET(TASK_FLAGS, struct task_struct, flags);
KLP_RS_OFFSET(TASK_TASKS, struct task_struct, tasks);
KLP_RS_OFFSET(TASK_SIGNAL, struct task_struct, signal);
KLP_RS_OFFSET(TASK_THREAD_NODE, struct task_struct, thread_node);
KLP_RS_OFFSET(TASK_PATCH_STATE, struct task_struct, patch_state);
KLP_RS_OFFSET(SIGNAL_THREAD_HEAD, struct signal_struct, thread_head);

KLP_RS_SIZE(MODULE, struct module);
KLP_RS_OFFSET(MODULE_NAME, struct module, name);
KLP_RS_OFFSET(MODULE_STATE, struct module, state);
KLP_RS_OFFSET(MODULE_KLP, struct module, klp);
KLP_RS_OFFSET(MODULE_KLP_ALIVE, struct module, klp_alive);
KLP_RS_OFFSET(MODULE_KLP_INFO, struct module, klp_info);
KLP_RS_OFFSET(MODULE_CORE_STRTAB, struct module, core_kallsyms.strtab);
const size_t RUST_CONST_HELPER_MODULE_NAME_LEN = MODULE_NAME_LEN;

KLP_RS_SIZE(KLP_FUNC, struct klp_func);
KLP_RS_OFFSET(KLP_FUNC_KOBJ, struct klp_func, kobj);
KLP_RS_OFFSET(KLP_FUNC_NODE, struct klp_func, node);
KLP_RS_OFFSET(KLP_FUNC_STACK_NODE, struct klp_func, stack_node);
KLP_RS_OFFSET(KLP_FUNC_TRANSITION, struct klp_func, transition);
KLP_RS_SIZE(KLP_OBJECT, struct klp_object);
KLP_RS_OFFSET(KLP_OBJECT_KOBJ, struct klp_object, kobj);
KLP_RS_OFFSET(KLP_OBJECT_FUNC_LIST, struct klp_object, func_list);
KLP_RS_OFFSET(KLP_OBJECT_PATCHED, struct klp_object, patched);
KLP_RS_SIZE(KLP_PATCH, struct klp_patch);
KLP_RS_OFFSET(KLP_PATCH_KOBJ, struct klp_patch, kobj);
KLP_RS_OFFSET(KLP_PATCH_FREE_WORK, struct klp_patch, free_work);
KLP_RS_OFFSET(KLP_PATCH_FINISH, struct klp_patch, finish);
KLP_RS_OFFSET(KLP_PATCH_FORCED, struct klp_patch, forced);
KLP_RS_SIZE(KLP_STATE, struct klp_state);
KLP_RS_SIZE(KLP_MODINFO, struct klp_modinfo);

KLP_RS_SIZE(FTRACE_OPS, struct ftrace_ops);
KLP_RS_OFFSET(FTRACE_OPS_FLAGS, struct ftrace_ops, flags);
KLP_RS_OFFSET(FTRACE_REGS_IP, struct __arch_ftrace_regs, regs.ip);
KLP_RS_SIZE(KOBJ_TYPE, struct kobj_type);
KLP_RS_SIZE(KOBJ_ATTRIBUTE, struct kobj_attribute);
KLP_RS_OFFSET(KOBJ_ATTRIBUTE_STORE, struct kobj_attribute, store);
KLP_RS_OFFSET(ATTRIBUTE_GROUP_ATTRS, struct attribute_group, attrs);

#undef KLP_RS_SIZE
#undef KLP_RS_OFFSET

#endif /* _KLP_RS_LAYOUT_H */
