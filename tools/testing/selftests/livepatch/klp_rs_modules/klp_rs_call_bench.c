// SPDX-License-Identifier: GPL-2.0
/*
 * klp-rs benchmark target: the cost of calling a function, unpatched (its
 * ftrace call site a NOP) or redirected by a livepatch (klp_rs_call_bench_patch)
 * through ftrace and the livepatch handler.
 *
 * echo N > /sys/module/klp_rs_call_bench/parameters/run   times N calls
 * cat /sys/module/klp_rs_call_bench/parameters/ns_per_call   "X.YY" (ns)
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/math64.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/timekeeping.h>

#define MAX_CALLS	100000000UL

static u64 centi_ns;		/* last result, hundredths of a ns per call */
static unsigned long sink;

unsigned long klp_rs_call_bench_fn(unsigned long x);

/* The livepatched function: global and noinline, so every call is real. */
noinline unsigned long klp_rs_call_bench_fn(unsigned long x)
{
	return x * 3 + 1;
}

static int run_set(const char *val, const struct kernel_param *kp)
{
	unsigned long calls, i, sum = 0;
	u64 start, ns;
	int ret;

	ret = kstrtoul(val, 0, &calls);
	if (ret)
		return ret;
	if (!calls || calls > MAX_CALLS)
		return -EINVAL;

	start = ktime_get_ns();
	for (i = 0; i < calls; i++)
		sum += klp_rs_call_bench_fn(i);
	ns = ktime_get_ns() - start;

	WRITE_ONCE(sink, sum);
	WRITE_ONCE(centi_ns, div64_u64(ns * 100, calls));
	return 0;
}

static const struct kernel_param_ops run_ops = {
	.set = run_set,
};
module_param_cb(run, &run_ops, NULL, 0200);

static int ns_per_call_get(char *buf, const struct kernel_param *kp)
{
	u64 c = READ_ONCE(centi_ns);

	return scnprintf(buf, PAGE_SIZE, "%llu.%02llu\n", c / 100, c % 100);
}

static int ns_per_call_set(const char *val, const struct kernel_param *kp)
{
	return -EPERM;
}

static const struct kernel_param_ops ns_per_call_ops = {
	.set = ns_per_call_set,
	.get = ns_per_call_get,
};
module_param_cb(ns_per_call, &ns_per_call_ops, NULL, 0444);

/* The sum of the last run: lets a check tell the replacement is equivalent. */
module_param(sink, ulong, 0444);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klp-rs benchmark: cost of a call, unpatched or livepatched");
