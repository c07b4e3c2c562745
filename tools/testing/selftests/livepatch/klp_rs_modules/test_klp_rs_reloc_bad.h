/* SPDX-License-Identifier: GPL-2.0 */
/*
 * klp-rs selftest: body of the test_klp_rs_reloc_bad_* livepatches, each
 * with one deliberately broken livepatch relocation (see klp-convert.list
 * for how each is converted). The including file defines KLP_RS_BAD_SYM,
 * the name of the livepatch symbol the replacement of cmdline_proc_show()
 * refers to. Every one must be refused and leave nothing behind.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/seq_file.h>

#include "test_klp_rs_reloc.h"

extern char klp_rs_bad_sym[] KLP_RS_SYM(KLP_RS_BAD_SYM);

/* Never set: only the relocation matters, the reference never runs. */
static int never;

static int livepatch_cmdline_proc_show(struct seq_file *m, void *v)
{
	if (READ_ONCE(never))
		seq_printf(m, "%px\n", klp_rs_bad_sym);
	seq_printf(m, "%s: this has been live patched\n", THIS_MODULE->name);
	return 0;
}

static struct klp_func funcs[] = {
	{
		.old_name = "cmdline_proc_show",
		.new_func = livepatch_cmdline_proc_show,
	}, { }
};

static struct klp_object objs[] = {
	{
		/* NULL name: vmlinux */
		.funcs = funcs,
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int __init test_klp_rs_reloc_bad_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit test_klp_rs_reloc_bad_exit(void)
{
}

module_init(test_klp_rs_reloc_bad_init);
module_exit(test_klp_rs_reloc_bad_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("klp-rs selftest: livepatch with a broken relocation");
