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
 *   spawn   (wo) writing N starts N more kthreads that each call
 *                test_klp_rs_busy_fn(true) once and then exit: while
 *                hold_spawned is set they sleep in it, and when it is
 *                cleared they go from there straight to do_exit(), past no
 *                switch point, so a transition that flagged them sees them
 *                leave the task list still pending
 *   hold_spawned (rw) what keeps the spawned kthreads in the function (the
 *                kthread above stays out of it, and so out of the way)
 *   spawned (ro) how many of those kthreads are alive
 *   waiting (ro) how many of those are sleeping in the function now
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
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
static bool hold_spawned;
static atomic_t spawned = ATOMIC_INIT(0);
static atomic_t waiting = ATOMIC_INIT(0);

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
	if (wait && current != busy_task) {
		/* A spawned kthread: quietly, and counted rather than flagged. */
		atomic_inc(&waiting);
		while (READ_ONCE(hold_spawned))
			msleep(20);
		atomic_dec(&waiting);
	} else if (wait) {
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

static int spawned_thread(void *unused)
{
	test_klp_rs_busy_fn(true);
	atomic_dec(&spawned);
	/* The module reference spawn_set() took keeps this code alive. */
	module_put_and_kthread_exit(0);
}

static int spawn_set(const char *val, const struct kernel_param *kp)
{
	struct task_struct *t;
	unsigned int n, i;
	int ret;

	ret = kstrtouint(val, 0, &n);
	if (ret)
		return ret;
	/* Not as a load parameter: a failed init would free running code. */
	if (THIS_MODULE->state != MODULE_STATE_LIVE)
		return -EBUSY;
	for (i = 0; i < n; i++) {
		if (!try_module_get(THIS_MODULE))
			return -ENODEV;
		atomic_inc(&spawned);
		t = kthread_run(spawned_thread, NULL, "test_klp_rs_spawn");
		if (IS_ERR(t)) {
			atomic_dec(&spawned);
			module_put(THIS_MODULE);
			return PTR_ERR(t);
		}
	}
	return 0;
}

static const struct kernel_param_ops spawn_ops = {
	.set = spawn_set,
};
module_param_cb(spawn, &spawn_ops, NULL, 0200);
module_param(hold_spawned, bool, 0644);

static int atomic_get(char *buf, const struct kernel_param *kp)
{
	return scnprintf(buf, PAGE_SIZE, "%d\n", atomic_read(kp->arg));
}

static const struct kernel_param_ops atomic_ops = {
	.set = probe_set,
	.get = atomic_get,
};
module_param_cb(spawned, &atomic_ops, &spawned, 0444);
module_param_cb(waiting, &atomic_ops, &waiting, 0444);

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
