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
 * The functions behind the exports are Rust (exports.rs).
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

/* Serialises the registry, the transition and the sysfs files (lock.rs). */
extern struct mutex klp_mutex;
DEFINE_MUTEX(klp_mutex);

/* The installed patches, in install order (lock.rs). */
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

#define KLP_RS_MAX_STACK_ENTRIES 100
static DEFINE_PER_CPU(unsigned long[KLP_RS_MAX_STACK_ENTRIES], klp_rs_stack_buf);

unsigned long *klp_rs_stack_entries(unsigned int *len);
unsigned long *klp_rs_stack_entries(unsigned int *len)
{
	*len = KLP_RS_MAX_STACK_ENTRIES;
	return this_cpu_ptr(klp_rs_stack_buf);
}

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
