// SPDX-License-Identifier: GPL-2.0
/*
 * klp-rs selftest livepatch for test-klp-rs-stress-sysfs.sh: replaces
 * test_klp_rs_busy_fn() of the test_klp_rs_busy module with a version that
 * returns 2 at once, never sleeping and printing nothing (the test loads it
 * over and over).
 *
 * A module of its own rather than test_klp_rs_busy_patch, so that what the
 * stress test does to it (forced transitions, hundreds of loads) never
 * touches the patch test-klp-rs-transition.sh checks.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/livepatch.h>
#include <linux/module.h>

static int livepatch_hammer_fn(bool wait)
{
	return 2;
}

static struct klp_func funcs[] = {
	{
		.old_name = "test_klp_rs_busy_fn",
		.new_func = livepatch_hammer_fn,
	}, { }
};

static struct klp_object objs[] = {
	{
		.name = "test_klp_rs_busy",
		.funcs = funcs,
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init test_klp_rs_hammer_patch_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit test_klp_rs_hammer_patch_exit(void)
{
}

module_init(test_klp_rs_hammer_patch_init);
module_exit(test_klp_rs_hammer_patch_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("klp-rs selftest: livepatch for test_klp_rs_busy_fn(), hammered through sysfs");
