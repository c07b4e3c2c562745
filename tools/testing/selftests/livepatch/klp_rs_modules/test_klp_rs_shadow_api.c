// SPDX-License-Identifier: GPL-2.0
/*
 * klp-rs selftest: calls every exported klp_shadow_* function once, at load,
 * and says whether the API works or fails cleanly. Loaded after a livepatch
 * core init that stopped early on purpose (livepatch.test_fail_init=), where
 * either is acceptable but a mix is not: an allocation that succeeds must be
 * found, freed with its destructor, and gone afterwards; one that fails must
 * leave nothing to find or free. Anything else fails the load with -EINVAL.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/livepatch.h>
#include <linux/module.h>

#define ID_API	0x4b60

static int failures;
static int dtor_calls;

#define CHECK(cond, what)						\
	do {								\
		if (!(cond)) {						\
			failures++;					\
			pr_err("FAIL: %s\n", what);			\
		}							\
	} while (0)

static void count_dtor(void *obj, void *data)
{
	dtor_calls++;
}

static int obj_a, obj_b;

static void check_works(void *a)
{
	void *b;

	CHECK(klp_shadow_get(&obj_a, ID_API) == a, "get finds the variable");
	CHECK(klp_shadow_get_or_alloc(&obj_a, ID_API, 16, GFP_KERNEL, NULL, NULL) == a,
	      "get_or_alloc returns the existing variable");
	klp_shadow_free(&obj_a, ID_API, count_dtor);
	CHECK(dtor_calls == 1, "free calls the destructor once");
	CHECK(!klp_shadow_get(&obj_a, ID_API), "get after free finds nothing");

	a = klp_shadow_get_or_alloc(&obj_a, ID_API, 16, GFP_KERNEL, NULL, NULL);
	b = klp_shadow_alloc(&obj_b, ID_API, 16, GFP_KERNEL, NULL, NULL);
	CHECK(a && b && a != b, "get_or_alloc and alloc make two variables");
	klp_shadow_free_all(ID_API, count_dtor);
	CHECK(dtor_calls == 3, "free_all calls the destructor for each");
	CHECK(!klp_shadow_get(&obj_a, ID_API) && !klp_shadow_get(&obj_b, ID_API),
	      "get after free_all finds nothing");
}

static void check_fails_cleanly(void)
{
	CHECK(!klp_shadow_get_or_alloc(&obj_a, ID_API, 16, GFP_KERNEL, NULL, NULL),
	      "get_or_alloc fails like alloc");
	CHECK(!klp_shadow_get(&obj_a, ID_API), "get finds nothing");
	klp_shadow_free(&obj_a, ID_API, count_dtor);
	klp_shadow_free_all(ID_API, count_dtor);
	CHECK(dtor_calls == 0, "free and free_all call no destructor");
}

static int __init test_klp_rs_shadow_api_init(void)
{
	void *a;

	CHECK(!klp_shadow_get(&obj_a, ID_API), "get before alloc finds nothing");
	a = klp_shadow_alloc(&obj_a, ID_API, 16, GFP_KERNEL, NULL, NULL);
	if (a)
		check_works(a);
	else
		check_fails_cleanly();
	if (failures)
		return -EINVAL;
	pr_info("the shadow variable API %s\n", a ? "works" : "fails cleanly");
	return 0;
}

static void __exit test_klp_rs_shadow_api_exit(void)
{
}

module_init(test_klp_rs_shadow_api_init);
module_exit(test_klp_rs_shadow_api_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klp-rs selftest: every klp_shadow_* function, once");
