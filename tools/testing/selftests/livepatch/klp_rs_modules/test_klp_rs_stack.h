/* SPDX-License-Identifier: GPL-2.0 */
/*
 * klp-rs selftest: body of the test_klp_rs_stack_a and test_klp_rs_stack_b
 * livepatches. Both replace cmdline_proc_show(); /proc/cmdline then reads
 * "<module name>: stacked patch", telling which patch is on top.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/seq_file.h>

static int livepatch_cmdline_proc_show(struct seq_file *m, void *v)
{
	seq_printf(m, "%s: stacked patch\n", THIS_MODULE->name);
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

static int __init stack_patch_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit stack_patch_exit(void)
{
}

module_init(stack_patch_init);
module_exit(stack_patch_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
