// SPDX-License-Identifier: GPL-2.0
/*
 * klp-rs selftest: shadow variable behaviour the upstream tests leave out.
 * Every check runs at load time; a failed one is logged as "FAIL ..." and
 * the load fails with -EINVAL.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#define ID_MANY		0x4b50
#define ID_RACE		0x4b51
#define ID_CTOR		0x4b52
#define ID_ALL_A	0x4b53
#define ID_ALL_B	0x4b54
#define ID_ATOMIC	0x4b55

#define N_MANY		100000
#define N_RACE		1000
#define N_ALL		500
#define N_ATOMIC	100
#define RACERS		4

static int failures;

#define CHECK(cond, fmt, ...)							\
	do {									\
		if (!(cond)) {							\
			if (failures++ < 20)					\
				pr_err("FAIL %s: " fmt "\n", __func__, ##__VA_ARGS__); \
		}								\
	} while (0)

/* Fake objects: shadow variables only compare their address. */
static unsigned long *objs;

static int ctor_store_index(void *obj, void *data, void *ctor_data)
{
	*(unsigned long *)data = (unsigned long *)obj - objs;
	return 0;
}

static atomic_t dtor_calls;

static void dtor_count(void *obj, void *data)
{
	atomic_inc(&dtor_calls);
}

static void test_many(void)
{
	unsigned long i, *data;
	int bad = 0;

	atomic_set(&dtor_calls, 0);
	for (i = 0; i < N_MANY; i++) {
		data = klp_shadow_alloc(&objs[i], ID_MANY, sizeof(*data),
					GFP_KERNEL, ctor_store_index, NULL);
		if (!data) {
			CHECK(0, "alloc %lu of %d failed", i, N_MANY);
			return;
		}
	}
	/* Give a table resize time to happen, then look everything up. */
	msleep(100);
	for (i = 0; i < N_MANY; i++) {
		data = klp_shadow_get(&objs[i], ID_MANY);
		if (!data || *data != i)
			bad++;
	}
	CHECK(bad == 0, "%d of %d lookups wrong after alloc", bad, N_MANY);
	CHECK(!klp_shadow_get(&objs[0], ID_MANY + 100), "unknown id found");

	for (i = 0; i < N_MANY; i += 2)
		klp_shadow_free(&objs[i], ID_MANY, dtor_count);
	msleep(100);
	bad = 0;
	for (i = 0; i < N_MANY; i++) {
		data = klp_shadow_get(&objs[i], ID_MANY);
		if (i % 2 ? (!data || *data != i) : !!data)
			bad++;
	}
	CHECK(bad == 0, "%d of %d lookups wrong after freeing half", bad, N_MANY);
	CHECK(atomic_read(&dtor_calls) == N_MANY / 2, "free ran %d destructors, expected %d",
	      atomic_read(&dtor_calls), N_MANY / 2);

	klp_shadow_free_all(ID_MANY, dtor_count);
	CHECK(atomic_read(&dtor_calls) == N_MANY, "destructors ran %d times, expected %d",
	      atomic_read(&dtor_calls), N_MANY);
	bad = 0;
	for (i = 0; i < N_MANY; i++)
		bad += !!klp_shadow_get(&objs[i], ID_MANY);
	CHECK(bad == 0, "%d variables left after free_all", bad);
}

static atomic_t ctor_calls;
static DECLARE_COMPLETION(race_start);
static struct completion race_done[RACERS];
static void *race_results[RACERS][N_RACE];

static int ctor_count(void *obj, void *data, void *ctor_data)
{
	atomic_inc(&ctor_calls);
	return 0;
}

static int racer(void *arg)
{
	long r = (long)arg;
	int i;

	wait_for_completion(&race_start);
	for (i = 0; i < N_RACE; i++)
		race_results[r][i] = klp_shadow_get_or_alloc(&objs[i], ID_RACE, 64, GFP_KERNEL,
							     ctor_count, NULL);
	/* Returning ends the kthread; kthread_stop() could end it before it ran. */
	complete(&race_done[r]);
	return 0;
}

static void test_race(void)
{
	struct task_struct *task;
	long r;
	int i, bad = 0, started = 0;

	atomic_set(&ctor_calls, 0);
	for (r = 0; r < RACERS; r++) {
		init_completion(&race_done[r]);
		task = kthread_create(racer, (void *)r, "klp_rs_racer%ld", r);
		if (IS_ERR(task))
			break;
		kthread_bind(task, r % num_online_cpus());
		wake_up_process(task);
		started++;
	}
	CHECK(started == RACERS, "started %d of %d racers", started, RACERS);
	complete_all(&race_start);
	for (r = 0; r < started; r++)
		wait_for_completion(&race_done[r]);
	if (started < RACERS)
		return;
	for (i = 0; i < N_RACE; i++) {
		for (r = 0; r < RACERS; r++)
			bad += !race_results[r][i] || race_results[r][i] != race_results[0][i];
		bad += race_results[0][i] != klp_shadow_get(&objs[i], ID_RACE);
	}
	CHECK(bad == 0, "%d racing results disagree", bad);
	CHECK(atomic_read(&ctor_calls) == N_RACE, "%d constructor calls for %d variables",
	      atomic_read(&ctor_calls), N_RACE);
	klp_shadow_free_all(ID_RACE, NULL);
}

static int ctor_fail(void *obj, void *data, void *ctor_data)
{
	return -ENOMEM;
}

static void test_ctor_failure(void)
{
	unsigned long *data;

	CHECK(!klp_shadow_alloc(&objs[0], ID_CTOR, 8, GFP_KERNEL, ctor_fail, NULL),
	      "alloc with a failing constructor returned data");
	CHECK(!klp_shadow_get(&objs[0], ID_CTOR), "failed alloc left a variable");
	CHECK(!klp_shadow_get_or_alloc(&objs[0], ID_CTOR, 8, GFP_KERNEL, ctor_fail, NULL),
	      "get_or_alloc with a failing constructor returned data");
	CHECK(!klp_shadow_get(&objs[0], ID_CTOR), "failed get_or_alloc left a variable");

	data = klp_shadow_alloc(&objs[0], ID_CTOR, 8, GFP_KERNEL, NULL, NULL);
	CHECK(data && *data == 0, "alloc after a failed one did not give zeroed data");
	CHECK(klp_shadow_get(&objs[0], ID_CTOR) == data, "get does not find it");
	klp_shadow_free(&objs[0], ID_CTOR, NULL);
	CHECK(!klp_shadow_get(&objs[0], ID_CTOR), "free left it behind");
}

static unsigned char dtor_seen[N_ALL];

static void dtor_mark(void *obj, void *data)
{
	unsigned long i = *(unsigned long *)data;

	if (i < N_ALL)
		dtor_seen[i]++;
}

static void test_free_all(void)
{
	int i, once = 0, b_left = 0;

	for (i = 0; i < N_ALL; i++) {
		CHECK(klp_shadow_alloc(&objs[i], ID_ALL_A, 8, GFP_KERNEL, ctor_store_index, NULL),
		      "alloc A %d", i);
		CHECK(klp_shadow_alloc(&objs[i], ID_ALL_B, 8, GFP_KERNEL, ctor_store_index, NULL),
		      "alloc B %d", i);
	}
	klp_shadow_free_all(ID_ALL_A, dtor_mark);
	for (i = 0; i < N_ALL; i++) {
		once += dtor_seen[i] == 1;
		b_left += !!klp_shadow_get(&objs[i], ID_ALL_B);
		CHECK(!klp_shadow_get(&objs[i], ID_ALL_A), "A %d survived free_all", i);
	}
	CHECK(once == N_ALL, "%d of %d destructors ran exactly once", once, N_ALL);
	CHECK(b_left == N_ALL, "free_all of A took %d of B", N_ALL - b_left);
	klp_shadow_free_all(ID_ALL_B, NULL);
	CHECK(!klp_shadow_get(&objs[0], ID_ALL_B), "B survived free_all");
}

static DEFINE_SPINLOCK(atomic_test_lock);

static void test_atomic_context(void)
{
	unsigned long flags;
	int i, ok = 0, found = 0;

	spin_lock_irqsave(&atomic_test_lock, flags);
	for (i = 0; i < N_ATOMIC; i++)
		ok += !!klp_shadow_alloc(&objs[i], ID_ATOMIC, 32, GFP_ATOMIC, NULL, NULL);
	for (i = 0; i < N_ATOMIC; i++)
		found += !!klp_shadow_get(&objs[i], ID_ATOMIC);
	for (i = 0; i < N_ATOMIC; i += 2)
		klp_shadow_free(&objs[i], ID_ATOMIC, NULL);
	klp_shadow_free_all(ID_ATOMIC, NULL);
	spin_unlock_irqrestore(&atomic_test_lock, flags);

	CHECK(ok == N_ATOMIC, "%d of %d GFP_ATOMIC allocations failed", N_ATOMIC - ok, N_ATOMIC);
	CHECK(found == N_ATOMIC, "%d of %d not found", N_ATOMIC - found, N_ATOMIC);
	CHECK(!klp_shadow_get(&objs[1], ID_ATOMIC), "variable left after free_all");
}

static int __init test_klp_rs_shadow_init(void)
{
	objs = kvcalloc(N_MANY, sizeof(*objs), GFP_KERNEL);
	if (!objs)
		return -ENOMEM;

	test_many();
	test_race();
	test_ctor_failure();
	test_free_all();
	test_atomic_context();

	kvfree(objs);
	if (failures) {
		pr_err("%d checks failed\n", failures);
		return -EINVAL;
	}
	pr_info("all shadow variable checks passed\n");
	return 0;
}

static void __exit test_klp_rs_shadow_exit(void)
{
}

module_init(test_klp_rs_shadow_init);
module_exit(test_klp_rs_shadow_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("klp-rs selftest: shadow variables at scale, racing, failing and atomic");
