// SPDX-License-Identifier: GPL-2.0
/*
 * klp-rs selftest livepatch with a deliberate flaw, chosen with the "flaw"
 * parameter at load time. Every flawed variant must be refused by
 * klp_enable_patch() and leave nothing behind; "none" is the control that
 * loads and replaces cmdline_proc_show() like the livepatch sample.
 *
 *   none         only the good function
 *   unknown      a second function whose name is not in kallsyms
 *   ambiguous    a second function (c_start) that vmlinux has twice, no sympos
 *   sympos       cmdline_proc_show at position 2 too (there is only one)
 *   dup_func     cmdline_proc_show at position 0 and again at position 1
 *   dup_object   two objects both naming vmlinux
 *   no_new_func  a second function without a replacement
 *   pre_patch    the vmlinux pre-patch callback fails with -ENODEV
 *   no_funcs     a module object without functions, before the good one
 *   no_old_name  a second function with a replacement but no name
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <linux/string.h>

static char *flaw = "none";
module_param(flaw, charp, 0444);
MODULE_PARM_DESC(flaw, "which flaw the patch has (see the source)");

static int livepatch_cmdline_proc_show(struct seq_file *m, void *v)
{
	seq_printf(m, "%s: this has been live patched\n", THIS_MODULE->name);
	return 0;
}

/* Stands in for functions the patch must never get to replace. */
static int livepatch_never_used(void)
{
	pr_err("%s: a refused patch is running\n", __func__);
	return 0;
}

#define GOOD_FUNC						\
	{							\
		.old_name = "cmdline_proc_show",		\
		.new_func = livepatch_cmdline_proc_show,	\
	}

static struct klp_func funcs_none[] = { GOOD_FUNC, { } };

static struct klp_func funcs_unknown[] = {
	GOOD_FUNC,
	{
		.old_name = "klp_rs_no_such_function",
		.new_func = livepatch_never_used,
	}, { }
};

static struct klp_func funcs_ambiguous[] = {
	GOOD_FUNC,
	{
		.old_name = "c_start",
		.new_func = livepatch_never_used,
	}, { }
};

static struct klp_func funcs_sympos[] = {
	GOOD_FUNC,
	{
		.old_name = "cmdline_proc_show",
		.new_func = livepatch_cmdline_proc_show,
		.old_sympos = 2,
	}, { }
};

/* Position 0 means "the only one", which is position 1. */
static struct klp_func funcs_dup_func[] = {
	GOOD_FUNC,
	{
		.old_name = "cmdline_proc_show",
		.new_func = livepatch_cmdline_proc_show,
		.old_sympos = 1,
	}, { }
};

/* The second vmlinux object needs its own klp_func array. */
static struct klp_func funcs_dup_object[] = {
	{
		.old_name = "version_proc_show",
		.new_func = livepatch_never_used,
	}, { }
};

static struct klp_func funcs_no_new_func[] = {
	GOOD_FUNC,
	{
		.old_name = "version_proc_show",
	}, { }
};

static struct klp_func funcs_no_old_name[] = {
	GOOD_FUNC,
	{
		.new_func = livepatch_never_used,
	}, { }
};

static int pre_patch_callback(struct klp_object *obj)
{
	pr_info("%s: vmlinux, returning -ENODEV\n", __func__);
	return -ENODEV;
}

static void post_patch_callback(struct klp_object *obj)
{
	pr_info("%s: vmlinux\n", __func__);
}

static void pre_unpatch_callback(struct klp_object *obj)
{
	pr_info("%s: vmlinux\n", __func__);
}

static void post_unpatch_callback(struct klp_object *obj)
{
	pr_info("%s: vmlinux\n", __func__);
}

static struct klp_object objs_none[] = { { .funcs = funcs_none }, { } };
static struct klp_object objs_unknown[] = { { .funcs = funcs_unknown }, { } };
static struct klp_object objs_ambiguous[] = { { .funcs = funcs_ambiguous }, { } };
static struct klp_object objs_sympos[] = { { .funcs = funcs_sympos }, { } };
static struct klp_object objs_dup_func[] = { { .funcs = funcs_dup_func }, { } };
static struct klp_object objs_no_new_func[] = { { .funcs = funcs_no_new_func }, { } };

static struct klp_object objs_no_old_name[] = { { .funcs = funcs_no_old_name }, { } };

/* The array goes on past an object with a name but no functions. */
static struct klp_object objs_no_funcs[] = {
	{ .name = "test_klp_rs_reloc_target" },
	{ .funcs = funcs_none },
	{ }
};

static struct klp_object objs_dup_object[] = {
	{ .funcs = funcs_none },
	{ .funcs = funcs_dup_object },
	{ }
};

static struct klp_object objs_pre_patch[] = {
	{
		.funcs = funcs_none,
		.callbacks = {
			.pre_patch = pre_patch_callback,
			.post_patch = post_patch_callback,
			.pre_unpatch = pre_unpatch_callback,
			.post_unpatch = post_unpatch_callback,
		},
	}, { }
};

static const struct {
	const char *name;
	struct klp_object *objs;
} flaws[] = {
	{ "none", objs_none },
	{ "unknown", objs_unknown },
	{ "ambiguous", objs_ambiguous },
	{ "sympos", objs_sympos },
	{ "dup_func", objs_dup_func },
	{ "dup_object", objs_dup_object },
	{ "no_new_func", objs_no_new_func },
	{ "pre_patch", objs_pre_patch },
	{ "no_funcs", objs_no_funcs },
	{ "no_old_name", objs_no_old_name },
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
};

static int __init test_klp_rs_bad_init(void)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(flaws); i++) {
		if (!strcmp(flaw, flaws[i].name)) {
			patch.objs = flaws[i].objs;
			return klp_enable_patch(&patch);
		}
	}
	pr_err("unknown flaw '%s'\n", flaw);
	return -EINVAL;
}

static void __exit test_klp_rs_bad_exit(void)
{
}

module_init(test_klp_rs_bad_init);
module_exit(test_klp_rs_bad_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("klp-rs selftest: livepatches with one flaw each, to be refused");
