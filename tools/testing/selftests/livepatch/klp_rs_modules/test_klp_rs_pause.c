// SPDX-License-Identifier: GPL-2.0
/*
 * klp-rs selftest livepatch: replaces the pause(2) syscall entry with a
 * version that behaves the same and counts its calls in the "calls"
 * parameter. A process sleeping in pause() keeps the old entry on its stack,
 * so it holds a transition open until it leaves the kernel: through a real
 * signal, or the fake one the livepatch core sends, after which the syscall
 * restarts in whichever entry is current for it.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/errno.h>
#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>

/* The name of a syscall's entry point depends on the syscall wrappers. */
#if defined(CONFIG_ARCH_HAS_SYSCALL_WRAPPER) && defined(CONFIG_X86_64)
#define PAUSE_ENTRY "__x64_sys_pause"
#elif defined(CONFIG_ARCH_HAS_SYSCALL_WRAPPER) && defined(CONFIG_ARM64)
#define PAUSE_ENTRY "__arm64_sys_pause"
#elif defined(CONFIG_ARCH_HAS_SYSCALL_WRAPPER) && defined(CONFIG_S390)
#define PAUSE_ENTRY "__s390x_sys_pause"
#else
#define PAUSE_ENTRY "sys_pause"
#endif

static atomic_t calls = ATOMIC_INIT(0);

static int calls_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d\n", atomic_read(&calls));
}

static const struct kernel_param_ops calls_ops = {
	.get = calls_get,
};
module_param_cb(calls, &calls_ops, NULL, 0444);
MODULE_PARM_DESC(calls, "how many times the replacement pause() was entered");

static asmlinkage long livepatch_sys_pause(const struct pt_regs *regs)
{
	atomic_inc(&calls);
	/* Sleep until a signal, real or not, is pending; then restart. */
	while (!signal_pending(current)) {
		__set_current_state(TASK_INTERRUPTIBLE);
		schedule();
	}
	return -ERESTARTNOHAND;
}

static struct klp_func funcs[] = {
	{
		.old_name = PAUSE_ENTRY,
		.new_func = livepatch_sys_pause,
	}, { }
};

static struct klp_object objs[] = {
	{
		/* vmlinux */
		.funcs = funcs,
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init test_klp_rs_pause_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit test_klp_rs_pause_exit(void)
{
}

module_init(test_klp_rs_pause_init);
module_exit(test_klp_rs_pause_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("klp-rs selftest: livepatch of the pause() syscall");
