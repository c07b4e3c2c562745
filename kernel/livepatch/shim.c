// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The only C of the Rust livepatch core. Each item is here because the
 * kernel offers it only as a C macro or a C definition that a built-in Rust
 * crate outside rust/ cannot produce:
 *
 * - EXPORT_SYMBOL_GPL() emits the __ksymtab entries modpost reads;
 * - DEFINE_STATIC_KEY_FALSE() defines the key the scheduler tests inline
 *   (livepatch_sched.h); Rust flips it (kernel::static_key);
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
#include <linux/jump_label.h>
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

/* As upstream's per-CPU buffer of klp_check_stack(). */
#define KLP_RS_MAX_STACK_ENTRIES 100
static DEFINE_PER_CPU(unsigned long[KLP_RS_MAX_STACK_ENTRIES], klp_rs_stack_buf);

unsigned long *klp_rs_stack_entries(unsigned int *len);
unsigned long *klp_rs_stack_entries(unsigned int *len)
{
	*len = KLP_RS_MAX_STACK_ENTRIES;
	return this_cpu_ptr(klp_rs_stack_buf);
}

/* The handler's recursion lock, ftrace_test_recursion_trylock(), needs it. */
#ifndef CONFIG_TRACING
#error "the livepatch handler needs ftrace_test_recursion_trylock() (CONFIG_TRACING)"
#endif

/*
 * The transition's debug lines, in upstream's words (Rust picks them): one
 * descriptor in this file, enabled with the rest of kernel/livepatch.
 */
void klp_rs_debug_transition(const char *name, const char *what);
void klp_rs_debug_transition(const char *name, const char *what)
{
	pr_debug("'%s': %s\n", name, what);
}

/*
 * Why a task could not switch; in a function of upstream's name, which the
 * selftests silence by name ("func klp_try_switch_task -p"). @why is NULL
 * for an unknown error, else followed by @old_name.
 */
void klp_try_switch_task(struct task_struct *task, int ret, const char *why,
			 const char *old_name);
void klp_try_switch_task(struct task_struct *task, int ret, const char *why,
			 const char *old_name)
{
	if (why)
		pr_debug("%s: %s:%d %s%s\n", __func__, task->comm, task->pid, why, old_name);
	else
		pr_debug("%s: Unknown error code (%d) when trying to switch %s:%d\n",
			 __func__, ret, task->comm, task->pid);
}
