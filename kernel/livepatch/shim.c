// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The only C of the Rust livepatch core. Each item is here because the
 * kernel offers it only as a C macro or a C definition that a built-in Rust
 * crate outside rust/ cannot produce:
 *
 * - EXPORT_SYMBOL_GPL() emits the __ksymtab entries modpost reads;
 * - DEFINE_STATIC_KEY_FALSE() and static_branch_enable/disable() define and
 *   flip the key the scheduler tests inline (livepatch_sched.h);
 * - DEFINE_PER_CPU()/this_cpu_ptr() place and find the per-CPU stack trace
 *   buffers of the transition's stack checks;
 * - pr_debug() creates the dynamic-debug descriptors that let users (and the
 *   upstream selftests) switch the transition's debug lines on by file or
 *   function; Rust's pr_debug!() has none;
 * - DEFINE_MUTEX() and LIST_HEAD() give klp_mutex and the list of installed
 *   patches their state at compile time, as upstream's are: the module
 *   loader calls klp_module_coming() for every module, possibly before the
 *   livepatch initcall ran or after it failed, and Rust can only initialise
 *   a kernel mutex (with its lockdep class) at run time.
 *
 * The functions behind the exports are Rust (registry.rs, reloc.rs,
 * shadow.rs, state.rs).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/export.h>
#include <linux/livepatch.h>
#include <linux/livepatch_sched.h>
#include <linux/mutex.h>
#include <linux/percpu.h>

EXPORT_SYMBOL_GPL(klp_enable_patch);
EXPORT_SYMBOL_GPL(klp_find_section_by_name);
EXPORT_SYMBOL_GPL(klp_shadow_get);
EXPORT_SYMBOL_GPL(klp_shadow_alloc);
EXPORT_SYMBOL_GPL(klp_shadow_get_or_alloc);
EXPORT_SYMBOL_GPL(klp_shadow_free);
EXPORT_SYMBOL_GPL(klp_shadow_free_all);
EXPORT_SYMBOL_GPL(klp_get_state);
EXPORT_SYMBOL_GPL(klp_get_prev_state);

/* Serialises the registry and the transition (registry.rs). */
extern struct mutex klp_mutex;
DEFINE_MUTEX(klp_mutex);

/* The installed patches, in install order (registry.rs). */
extern struct list_head klp_patches;
LIST_HEAD(klp_patches);

/* Tested by klp_sched_try_switch() in __schedule(); on during transitions. */
DEFINE_STATIC_KEY_FALSE(klp_sched_try_switch_key);

void klp_rs_set_sched_try_switch(bool enable);
void klp_rs_set_sched_try_switch(bool enable)
{
	if (enable)
		static_branch_enable(&klp_sched_try_switch_key);
	else
		static_branch_disable(&klp_sched_try_switch_key);
}

/*
 * lockdep_assert_preemption_disabled() is a macro over lockdep's per-CPU
 * state. transition.rs calls this only on PROVE_LOCKING kernels.
 */
void klp_rs_assert_preemption_disabled(void);
void klp_rs_assert_preemption_disabled(void)
{
	lockdep_assert_preemption_disabled();
}

/* Rust reads the size from klp_rs_c_layout[]. */
#define KLP_RS_MAX_STACK_ENTRIES 100
static DEFINE_PER_CPU(unsigned long[KLP_RS_MAX_STACK_ENTRIES], klp_rs_stack_buf);

unsigned long *klp_rs_stack_entries(void);
unsigned long *klp_rs_stack_entries(void)
{
	return this_cpu_ptr(klp_rs_stack_buf);
}

/*
 * Where C put the fields the Rust side reads. bindgen's task_struct does not
 * match C's: structs that are empty in this configuration take no space in
 * C but one byte in Rust, which shifts every later field. So task fields are
 * read at these offsets, and the layouts of the other structs Rust reads
 * through bindgen are checked against these sizes and offsets at boot.
 * Field order must match `CLayout` in layout.rs.
 */
#include <linux/sched/signal.h>
#include <linux/ftrace.h>
#include <linux/module.h>

const unsigned long klp_rs_c_layout[] = {
	offsetof(struct task_struct, thread_info.flags),
	offsetof(struct task_struct, flags),
	offsetof(struct task_struct, tasks),
	offsetof(struct task_struct, signal),
	offsetof(struct task_struct, thread_node),
	offsetof(struct task_struct, patch_state),
	offsetof(struct signal_struct, thread_head),
	sizeof(struct klp_func),
	offsetof(struct klp_func, new_func),
	offsetof(struct klp_func, stack_node),
	offsetof(struct klp_func, nop),
	offsetof(struct klp_func, transition),
	sizeof(struct klp_object),
	offsetof(struct klp_object, func_list),
	offsetof(struct klp_object, patched),
	sizeof(struct klp_patch),
	offsetof(struct klp_patch, obj_list),
	offsetof(struct klp_patch, forced),
	sizeof(struct klp_state),
	sizeof(struct ftrace_ops),
	offsetof(struct module, name),
	offsetof(struct klp_func, old_name),
	offsetof(struct klp_func, old_func),
	offsetof(struct klp_func, old_size),
	offsetof(struct klp_func, new_size),
	offsetof(struct klp_func, patched),
	offsetof(struct klp_func, node),
	offsetof(struct klp_object, name),
	offsetof(struct klp_object, mod),
	offsetof(struct klp_object, node),
	offsetof(struct klp_object, dynamic),
	offsetof(struct klp_object, callbacks),
	offsetof(struct klp_patch, mod),
	offsetof(struct klp_patch, list),
	offsetof(struct klp_patch, states),
	offsetof(struct klp_patch, replace),
	offsetof(struct klp_patch, enabled),
	offsetof(struct ftrace_ops, func),
	offsetof(struct ftrace_ops, flags),
	offsetof(struct __arch_ftrace_regs, regs.ip),
	offsetof(struct cpumask, bits),
	offsetof(struct module, state),
	offsetof(struct module, klp),
	offsetof(struct module, klp_alive),
	offsetof(struct module, klp_info),
	offsetof(struct module, core_kallsyms.strtab),
	MODULE_NAME_LEN,
	offsetof(struct klp_patch, kobj),
	offsetof(struct klp_patch, objs),
	offsetof(struct klp_patch, free_work),
	offsetof(struct klp_patch, finish),
	offsetof(struct klp_object, kobj),
	offsetof(struct klp_object, funcs),
	offsetof(struct klp_func, kobj),
	offsetof(struct klp_func, old_sympos),
	offsetof(struct klp_modinfo, sechdrs),
	offsetof(struct klp_modinfo, secstrings),
	offsetof(struct klp_modinfo, symndx),
	sizeof(struct kobj_type),
	offsetof(struct kobj_type, default_groups),
	sizeof(struct kobj_attribute),
	offsetof(struct kobj_attribute, store),
	offsetof(struct attribute_group, attrs),
	KLP_RS_MAX_STACK_ENTRIES,
	/* The number of entries, last: Rust checks it against its own. */
	65,
};
static_assert(ARRAY_SIZE(klp_rs_c_layout) == 65);

/* The handler takes ftrace's recursion lock (rust/helpers/ftrace.c). */
#ifndef CONFIG_TRACING
#error "the livepatch handler needs ftrace_test_recursion_trylock() (CONFIG_TRACING)"
#endif

/* Debug lines of transition.rs, worded as upstream's; `what` picks one. */
enum klp_rs_debug {
	KLP_RS_DEBUG_INIT,
	KLP_RS_DEBUG_COMPLETE,
	KLP_RS_DEBUG_CANCEL,
	KLP_RS_DEBUG_REVERSE,
};

static const char *klp_rs_direction(int target)
{
	return target == KLP_TRANSITION_PATCHED ? "patching" : "unpatching";
}

void klp_rs_debug_transition(int what, const char *name, int target);
void klp_rs_debug_transition(int what, const char *name, int target)
{
	switch (what) {
	case KLP_RS_DEBUG_INIT:
		pr_debug("'%s': initializing %s transition\n", name, klp_rs_direction(target));
		break;
	case KLP_RS_DEBUG_COMPLETE:
		pr_debug("'%s': completing %s transition\n", name, klp_rs_direction(target));
		break;
	case KLP_RS_DEBUG_CANCEL:
		pr_debug("'%s': canceling patching transition, going to unpatch\n", name);
		break;
	case KLP_RS_DEBUG_REVERSE:
		pr_debug("'%s': reversing transition from %s\n", name,
			 target == KLP_TRANSITION_PATCHED ? "patching to unpatching" :
							    "unpatching to patching");
		break;
	}
}

/*
 * Why a task could not switch yet. Named after upstream's function so that
 * "func klp_try_switch_task" in dynamic_debug/control still selects these
 * lines (the selftests turn them off that way).
 */
void klp_try_switch_task(struct task_struct *task, int ret, const char *old_name);
void klp_try_switch_task(struct task_struct *task, int ret, const char *old_name)
{
	switch (ret) {
	case -EBUSY:
		pr_debug("%s: %s:%d is running\n", __func__, task->comm, task->pid);
		break;
	case -EINVAL:
		pr_debug("%s: %s:%d has an unreliable stack\n", __func__, task->comm, task->pid);
		break;
	case -EADDRINUSE:
		pr_debug("%s: %s:%d is sleeping on function %s\n", __func__, task->comm,
			 task->pid, old_name);
		break;
	default:
		pr_debug("%s: Unknown error code (%d) when trying to switch %s:%d\n", __func__,
			 ret, task->comm, task->pid);
		break;
	}
}
