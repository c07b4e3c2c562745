// SPDX-License-Identifier: GPL-2.0
/*
 * klp-rs benchmark livepatch: redirects klp_rs_call_bench_fn() of the
 * klp_rs_call_bench module to an equivalent replacement, so the difference
 * in time per call is what ftrace and the livepatch handler add.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/livepatch.h>
#include <linux/module.h>

static unsigned long livepatch_call_bench_fn(unsigned long x)
{
	return x * 3 + 1;
}

static struct klp_func funcs[] = {
	{
		.old_name = "klp_rs_call_bench_fn",
		.new_func = livepatch_call_bench_fn,
	}, { }
};

static struct klp_object objs[] = {
	{
		.name = "klp_rs_call_bench",
		.funcs = funcs,
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init klp_rs_call_bench_patch_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit klp_rs_call_bench_patch_exit(void)
{
}

module_init(klp_rs_call_bench_patch_init);
module_exit(klp_rs_call_bench_patch_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("klp-rs benchmark: equivalent replacement of klp_rs_call_bench_fn()");
