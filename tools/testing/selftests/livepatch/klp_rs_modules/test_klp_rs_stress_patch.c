// SPDX-License-Identifier: GPL-2.0
/*
 * klp-rs stress patch: replaces test_klp_rs_stress_fn() of
 * test_klp_rs_stress with a version that counts its calls in the target's
 * test_klp_rs_stress_new_calls and returns 2.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/livepatch.h>
#include <linux/module.h>

extern atomic_long_t test_klp_rs_stress_new_calls;

static int livepatch_stress_fn(void)
{
	atomic_long_inc(&test_klp_rs_stress_new_calls);
	return 2;
}

static struct klp_func funcs[] = {
	{
		.old_name = "test_klp_rs_stress_fn",
		.new_func = livepatch_stress_fn,
	}, { }
};

static struct klp_object objs[] = {
	{
		.name = "test_klp_rs_stress",
		.funcs = funcs,
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init test_klp_rs_stress_patch_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit test_klp_rs_stress_patch_exit(void)
{
}

module_init(test_klp_rs_stress_patch_init);
module_exit(test_klp_rs_stress_patch_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("klp-rs selftest: the stress target's function, replaced");
