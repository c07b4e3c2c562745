// SPDX-License-Identifier: GPL-2.0
/*
 * klp-rs selftest target for test_klp_rs_reloc_mod_patch, which replaces
 * test_klp_rs_reloc_target_show() with a version that reaches this module's
 * static variable and static function through .klp.rela relocations,
 * written when this module loads after the patch.
 *
 * Parameters (/sys/module/test_klp_rs_reloc_target/parameters/):
 *   secret  (ro) the value of test_klp_rs_reloc_target_secret, set at load
 *   probe   (ro) reading calls test_klp_rs_reloc_target_show(): "original"
 *                unpatched
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/moduleparam.h>

/* Neither is exported; the patch finds them by name in this module. */
static int test_klp_rs_reloc_target_secret __used;
module_param_named(secret, test_klp_rs_reloc_target_secret, int, 0444);

static noinline __used int test_klp_rs_reloc_target_mix(int x)
{
	return x * 100 + READ_ONCE(test_klp_rs_reloc_target_secret);
}

int test_klp_rs_reloc_target_show(char *buf);

/* The livepatched function. */
noinline int test_klp_rs_reloc_target_show(char *buf)
{
	return scnprintf(buf, PAGE_SIZE, "original\n");
}

static int probe_get(char *buf, const struct kernel_param *kp)
{
	return test_klp_rs_reloc_target_show(buf);
}

static int probe_set(const char *val, const struct kernel_param *kp)
{
	return -EPERM;
}

static const struct kernel_param_ops probe_ops = {
	.set = probe_set,
	.get = probe_get,
};
module_param_cb(probe, &probe_ops, NULL, 0444);

static int __init test_klp_rs_reloc_target_init(void)
{
	return 0;
}

static void __exit test_klp_rs_reloc_target_exit(void)
{
}

module_init(test_klp_rs_reloc_target_init);
module_exit(test_klp_rs_reloc_target_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klp-rs selftest: target of a livepatch with module relocations");
