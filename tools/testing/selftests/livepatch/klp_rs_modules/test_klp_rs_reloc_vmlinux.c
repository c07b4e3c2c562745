// SPDX-License-Identifier: GPL-2.0
/*
 * klp-rs selftest livepatch: replaces cmdline_proc_show() with a version
 * that reaches two vmlinux symbols no module may link against, through
 * .klp.rela.vmlinux.* relocations applied when this module loads:
 *
 *   saved_command_line     its address from code (R_X86_64_32S), from data
 *                          (R_X86_64_64 in .data) and its value (PC32)
 *   kallsyms_lookup_name() called (PLT32) to look the same address up
 *
 * /proc/cmdline then reads
 *   test_klp_rs_reloc_vmlinux: code=<addr> data=<addr> lookup=<addr> value=<cmdline>
 * where all three addresses must be saved_command_line's in /proc/kallsyms
 * and <cmdline> the original /proc/cmdline.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/seq_file.h>

#include "test_klp_rs_reloc.h"

extern char *klp_saved_command_line
	KLP_RS_SYM(".klp.sym.vmlinux.saved_command_line,0");
extern unsigned long klp_kallsyms_lookup_name(const char *name)
	KLP_RS_SYM(".klp.sym.vmlinux.kallsyms_lookup_name,0");

/* Not static, so that the compiler keeps the initialized pointer in .data. */
char **test_klp_rs_reloc_saved_ptr = &klp_saved_command_line;

static int livepatch_cmdline_proc_show(struct seq_file *m, void *v)
{
	seq_printf(m, "%s: code=%px data=%px lookup=%px value=%s\n",
		   THIS_MODULE->name, &klp_saved_command_line,
		   READ_ONCE(test_klp_rs_reloc_saved_ptr),
		   (void *)klp_kallsyms_lookup_name("saved_command_line"),
		   klp_saved_command_line);
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

static int __init test_klp_rs_reloc_vmlinux_init(void)
{
	/*
	 * Left unconverted, the weak symbol would have resolved to 0: refuse
	 * rather than let the replacement dereference it.
	 */
	if (!READ_ONCE(test_klp_rs_reloc_saved_ptr)) {
		pr_err("livepatch symbols unresolved: not converted by klp-convert?\n");
		return -EINVAL;
	}
	return klp_enable_patch(&patch);
}

static void __exit test_klp_rs_reloc_vmlinux_exit(void)
{
}

module_init(test_klp_rs_reloc_vmlinux_init);
module_exit(test_klp_rs_reloc_vmlinux_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("klp-rs selftest: livepatch reaching unexported vmlinux symbols");
