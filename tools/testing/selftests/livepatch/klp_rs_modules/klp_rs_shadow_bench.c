// SPDX-License-Identifier: GPL-2.0
/*
 * klp-rs benchmark: cost of klp_shadow_get() and of an alloc/free pair with
 * 1, 1,000 and 100,000 live shadow variables. Results go to the kernel log
 * as "klp_rs_shadow_bench: live=N get_ns=X alloc_free_ns=Y".
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>

#define BENCH_ID	0x4b42
#define SPARE_ID	0x4b43
#define MAX_LIVE	100000
#define GETS		200000
#define ALLOC_FREES	20000

static unsigned long *objs;

/* Report in hundredths of a nanosecond, printed as ns with two decimals. */
static void report(const char *what, u64 ns, u64 ops, char *buf, size_t len)
{
	u64 centi = div64_u64(ns * 100, ops);

	snprintf(buf, len, "%s=%llu.%02llu", what, centi / 100, centi % 100);
}

static int bench_one(unsigned long live)
{
	char get_buf[48], af_buf[48];
	unsigned long i, idx = 0;
	u64 start, get_ns, af_ns;
	void *sink = NULL;

	for (i = 0; i < live; i++)
		if (!klp_shadow_alloc(&objs[i], BENCH_ID, 16, GFP_KERNEL, NULL, NULL))
			return -ENOMEM;
	/* Let any deferred table resize finish before measuring. */
	msleep(200);

	start = ktime_get_ns();
	for (i = 0; i < GETS; i++) {
		/* A cheap stride walk over all live objects. */
		idx += 7919;
		if (idx >= live)
			idx %= live;
		sink = klp_shadow_get(&objs[idx], BENCH_ID);
		if (unlikely(!sink))
			return -EINVAL;
	}
	get_ns = ktime_get_ns() - start;

	start = ktime_get_ns();
	for (i = 0; i < ALLOC_FREES; i++) {
		if (!klp_shadow_alloc(&objs[i % live], SPARE_ID, 16, GFP_KERNEL, NULL, NULL))
			return -ENOMEM;
		klp_shadow_free(&objs[i % live], SPARE_ID, NULL);
	}
	af_ns = ktime_get_ns() - start;

	klp_shadow_free_all(BENCH_ID, NULL);
	report("get_ns", get_ns, GETS, get_buf, sizeof(get_buf));
	report("alloc_free_ns", af_ns, ALLOC_FREES, af_buf, sizeof(af_buf));
	pr_info("live=%lu %s %s\n", live, get_buf, af_buf);
	msleep(200);
	return 0;
}

static int __init klp_rs_shadow_bench_init(void)
{
	static const unsigned long counts[] = { 1, 1000, MAX_LIVE };
	int i, ret = 0;

	objs = kvcalloc(MAX_LIVE, sizeof(*objs), GFP_KERNEL);
	if (!objs)
		return -ENOMEM;
	for (i = 0; i < ARRAY_SIZE(counts) && !ret; i++)
		ret = bench_one(counts[i]);
	klp_shadow_free_all(BENCH_ID, NULL);
	kvfree(objs);
	return ret;
}

static void __exit klp_rs_shadow_bench_exit(void)
{
}

module_init(klp_rs_shadow_bench_init);
module_exit(klp_rs_shadow_bench_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klp-rs benchmark: shadow variable lookup and alloc/free cost");
