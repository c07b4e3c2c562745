// SPDX-License-Identifier: GPL-2.0
/*
 * klp-rs stress livepatch for test_klp_rs_reloc_target, which
 * test-klp-rs-stress-module.sh loads and unloads again and again while this
 * patch stays enabled. Like test_klp_rs_reloc_mod_patch, its replacement of
 * test_klp_rs_reloc_target_show() reaches the target's statics through
 * .klp.rela relocations, so the probe reads
 *   patched secret=<secret> mix=<7 * 100 + secret> addr=<&secret>
 * only if the core wrote them again for this load of the target. Its
 * callbacks on the target's object count their calls.
 *
 * Parameters (/sys/module/test_klp_rs_stress_mod_patch/parameters/):
 *   callbacks (ro) "<pre_patch> <post_patch> <pre_unpatch> <post_unpatch>"
 *                  calls so far, and "unbalanced" after a callback saw the
 *                  one before it missing
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/moduleparam.h>

#include "test_klp_rs_reloc_target_show.h"

/* The core runs an object's callbacks one at a time, under its mutex. */
static unsigned int pre_patch_calls, post_patch_calls;
static unsigned int pre_unpatch_calls, post_unpatch_calls;
static bool unbalanced;

/* Each callback expects the counts its predecessors in the cycle left. */
static int pre_patch(struct klp_object *obj)
{
	if (pre_patch_calls != post_unpatch_calls)
		unbalanced = true;
	pre_patch_calls++;
	return 0;
}

static void post_patch(struct klp_object *obj)
{
	if (post_patch_calls + 1 != pre_patch_calls)
		unbalanced = true;
	post_patch_calls++;
}

static void pre_unpatch(struct klp_object *obj)
{
	if (pre_unpatch_calls + 1 != post_patch_calls)
		unbalanced = true;
	pre_unpatch_calls++;
}

static void post_unpatch(struct klp_object *obj)
{
	if (post_unpatch_calls + 1 != pre_unpatch_calls)
		unbalanced = true;
	post_unpatch_calls++;
}

static int callbacks_get(char *buf, const struct kernel_param *kp)
{
	return scnprintf(buf, PAGE_SIZE, "%u %u %u %u%s\n", pre_patch_calls,
			 post_patch_calls, pre_unpatch_calls, post_unpatch_calls,
			 unbalanced ? " unbalanced" : "");
}

static const struct kernel_param_ops callbacks_ops = {
	.get = callbacks_get,
};
module_param_cb(callbacks, &callbacks_ops, NULL, 0444);

static struct klp_func funcs[] = {
	{
		.old_name = "test_klp_rs_reloc_target_show",
		.new_func = livepatch_target_show,
	}, { }
};

static struct klp_object objs[] = {
	{
		.name = "test_klp_rs_reloc_target",
		.funcs = funcs,
		.callbacks = {
			.pre_patch = pre_patch,
			.post_patch = post_patch,
			.pre_unpatch = pre_unpatch,
			.post_unpatch = post_unpatch,
		},
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init test_klp_rs_stress_mod_patch_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit test_klp_rs_stress_mod_patch_exit(void)
{
}

module_init(test_klp_rs_stress_mod_patch_init);
module_exit(test_klp_rs_stress_mod_patch_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("klp-rs selftest: livepatch with relocations and callbacks for a module loaded again and again");
