// SPDX-License-Identifier: GPL-2.0
/*
 * klp-rs selftest target: a kthread that sleeps inside a to-be-patched
 * function for as long as the "hold" parameter is set, holding a livepatch
 * transition open.
 *
 * Parameters (/sys/module/test_klp_rs_busy/parameters/):
 *   hold    (rw) writing 1 makes the kthread call test_klp_rs_busy_fn(true),
 *                which sleeps (uninterruptibly, re-checking) until hold is 0
 *   inside  (ro) Y while the kthread is inside the original function
 *   last    (ro) what the kthread's last call returned (0 while one runs)
 *   pid     (ro) the kthread's pid
 *   probe   (ro) reading calls test_klp_rs_busy_fn(false) in the reader's
 *                context and shows its result: 1 original, 2 patched
 *   flagged (ro) how many threads have TIF_PATCH_PENDING set now: once no
 *                transition is in progress, any is a stale flag (idle
 *                tasks, which a module cannot reach, are not counted)
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/pid.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/wait.h>

static DECLARE_WAIT_QUEUE_HEAD(busy_wq);
static struct task_struct *busy_task;

static bool hold;
static bool inside;
static int last;
static int pid;

static int hold_set(const char *val, const struct kernel_param *kp)
{
	int ret = param_set_bool(val, kp);

	if (!ret)
		wake_up(&busy_wq);
	return ret;
}

static const struct kernel_param_ops hold_ops = {
	.set = hold_set,
	.get = param_get_bool,
};
module_param_cb(hold, &hold_ops, &hold, 0644);
module_param(inside, bool, 0444);
module_param(last, int, 0444);
module_param(pid, int, 0444);

int test_klp_rs_busy_fn(bool wait);

/* The livepatched function. The kthread sleeps in here while held. */
noinline int test_klp_rs_busy_fn(bool wait)
{
	int ret = 1;

	/* Keep the compiler from folding the constant into the callers. */
	OPTIMIZER_HIDE_VAR(ret);
	if (wait) {
		pr_info("%s: entered, sleeping until released\n", __func__);
		WRITE_ONCE(inside, true);
		/*
		 * msleep() sleeps uninterruptibly and the loop re-checks, so
		 * neither the livepatch fake signal nor a kthread wakeup
		 * lets the task out of this function early.
		 */
		while (READ_ONCE(hold) && !kthread_should_stop())
			msleep(20);
		pr_info("%s: released\n", __func__);
		WRITE_ONCE(inside, false);
	}
	return ret;
}

static int probe_get(char *buf, const struct kernel_param *kp)
{
	return scnprintf(buf, PAGE_SIZE, "%d\n", test_klp_rs_busy_fn(false));
}

static int probe_set(const char *val, const struct kernel_param *kp)
{
	return -EPERM;
}

static const struct kernel_param_ops probe_ops = {
	.set = probe_set,
	.get = probe_get,
};
module_param_cb(probe, &probe_ops, NULL, 0444);

static int flagged_get(char *buf, const struct kernel_param *kp)
{
	struct task_struct *g, *t;
	unsigned long n = 0;

	rcu_read_lock();
	for_each_process_thread(g, t)
		if (test_tsk_thread_flag(t, TIF_PATCH_PENDING))
			n++;
	rcu_read_unlock();
	return scnprintf(buf, PAGE_SIZE, "%lu\n", n);
}

static const struct kernel_param_ops flagged_ops = {
	.set = probe_set,
	.get = flagged_get,
};
module_param_cb(flagged, &flagged_ops, NULL, 0444);

static int busy_thread(void *unused)
{
	while (!kthread_should_stop()) {
		wait_event_interruptible(busy_wq, READ_ONCE(hold) || kthread_should_stop());
		if (kthread_should_stop())
			break;
		WRITE_ONCE(last, 0);
		WRITE_ONCE(last, test_klp_rs_busy_fn(true));
		/* One call per hold: a replacement may return at once. */
		wait_event_interruptible(busy_wq, !READ_ONCE(hold) || kthread_should_stop());
	}
	return 0;
}

static int __init test_klp_rs_busy_init(void)
{
	busy_task = kthread_run(busy_thread, NULL, "test_klp_rs_busy");
	if (IS_ERR(busy_task))
		return PTR_ERR(busy_task);
	pid = task_pid_nr(busy_task);
	return 0;
}

static void __exit test_klp_rs_busy_exit(void)
{
	WRITE_ONCE(hold, false);
	kthread_stop(busy_task);
}

module_init(test_klp_rs_busy_init);
module_exit(test_klp_rs_busy_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klp-rs selftest: kthread sleeping in a to-be-patched function");
