// SPDX-License-Identifier: GPL-2.0
/*
 * klp-rs stress target: four kthreads call test_klp_rs_stress_fn() in a
 * loop while a test enables and disables a livepatch of it
 * (test_klp_rs_stress_patch). Every call is counted twice: by its caller,
 * and by the function that ran, the original here (returning 1) or the
 * replacement (returning 2) in test_klp_rs_stress_new_calls, which is
 * exported for it. A call that returns anything else is a stray.
 *
 * Parameters (/sys/module/test_klp_rs_stress/parameters/):
 *   counts (ro) "<calls> <old> <new> <strays>"
 *   stop   (wo) writing anything stops the callers, after which the counts
 *               hold still and calls = old + new
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>

#define NR_CALLERS 4

atomic_long_t test_klp_rs_stress_new_calls = ATOMIC_LONG_INIT(0);
EXPORT_SYMBOL_GPL(test_klp_rs_stress_new_calls);

static atomic_long_t calls = ATOMIC_LONG_INIT(0);
static atomic_long_t old_calls = ATOMIC_LONG_INIT(0);
static atomic_long_t strays = ATOMIC_LONG_INIT(0);

static struct task_struct *callers[NR_CALLERS];
static DEFINE_MUTEX(callers_lock);

int test_klp_rs_stress_fn(void);

/* The livepatched function. */
noinline int test_klp_rs_stress_fn(void)
{
	int ret = 1;

	/* Keep the compiler from folding the constant into the callers. */
	OPTIMIZER_HIDE_VAR(ret);
	atomic_long_inc(&old_calls);
	return ret;
}

static int caller_fn(void *unused)
{
	unsigned long n = 0;

	while (!kthread_should_stop()) {
		int ret = test_klp_rs_stress_fn();

		if (ret != 1 && ret != 2)
			atomic_long_inc(&strays);
		atomic_long_inc(&calls);
		/*
		 * A kthread never leaves the kernel, so a transition switches
		 * it at cond_resched() or, asleep, by its stack: sleep now
		 * and then, and give the CPU up in between.
		 */
		if (++n % 256 == 0)
			usleep_range(100, 200);
		else
			cond_resched();
	}
	return 0;
}

static void stop_callers(void)
{
	int i;

	mutex_lock(&callers_lock);
	for (i = 0; i < NR_CALLERS; i++) {
		if (callers[i]) {
			kthread_stop(callers[i]);
			callers[i] = NULL;
		}
	}
	mutex_unlock(&callers_lock);
}

static int stop_set(const char *val, const struct kernel_param *kp)
{
	stop_callers();
	return 0;
}

static const struct kernel_param_ops stop_ops = {
	.set = stop_set,
};
module_param_cb(stop, &stop_ops, NULL, 0200);

static int counts_get(char *buf, const struct kernel_param *kp)
{
	return scnprintf(buf, PAGE_SIZE, "%ld %ld %ld %ld\n",
			 atomic_long_read(&calls), atomic_long_read(&old_calls),
			 atomic_long_read(&test_klp_rs_stress_new_calls),
			 atomic_long_read(&strays));
}

static const struct kernel_param_ops counts_ops = {
	.get = counts_get,
};
module_param_cb(counts, &counts_ops, NULL, 0444);

static int __init test_klp_rs_stress_init(void)
{
	struct task_struct *task;
	int i;

	for (i = 0; i < NR_CALLERS; i++) {
		task = kthread_run(caller_fn, NULL, "klp_rs_stress/%d", i);
		if (IS_ERR(task)) {
			stop_callers();
			return PTR_ERR(task);
		}
		mutex_lock(&callers_lock);
		callers[i] = task;
		mutex_unlock(&callers_lock);
	}
	return 0;
}

static void __exit test_klp_rs_stress_exit(void)
{
	stop_callers();
}

module_init(test_klp_rs_stress_init);
module_exit(test_klp_rs_stress_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klp-rs selftest: a function called in a loop by four kthreads");
