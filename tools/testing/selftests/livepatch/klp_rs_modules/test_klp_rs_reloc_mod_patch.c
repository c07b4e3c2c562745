// SPDX-License-Identifier: GPL-2.0
/*
 * klp-rs selftest livepatch for test_klp_rs_reloc_target, meant to be loaded
 * before it: its replacement of test_klp_rs_reloc_target_show() reads the
 * target's static test_klp_rs_reloc_target_secret and calls its static
 * test_klp_rs_reloc_target_mix() through .klp.rela.test_klp_rs_reloc_target.*
 * relocations, which the livepatch core writes each time the target loads
 * and clears each time it goes. Its probe then reads
 *   patched secret=<secret> mix=<7 * 100 + secret> addr=<&secret>
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/livepatch.h>
#include <linux/module.h>

#include "test_klp_rs_reloc_target_show.h"

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
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init test_klp_rs_reloc_mod_patch_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit test_klp_rs_reloc_mod_patch_exit(void)
{
}

module_init(test_klp_rs_reloc_mod_patch_init);
module_exit(test_klp_rs_reloc_mod_patch_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("klp-rs selftest: livepatch with relocations into a later-loaded module");
