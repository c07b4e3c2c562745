/* SPDX-License-Identifier: GPL-2.0 */
/*
 * klp-rs stress: body of the ten cumulative livepatches
 * test_klp_rs_replace_0 ... test_klp_rs_replace_9, which
 * test-klp-rs-stress-replace.sh enables one after another, each replacing
 * the one before, while the kthreads of test_klp_rs_stress call the function
 * they all patch. The including file defines REPLACE_NR, the patch's number.
 *
 * Every patch replaces test_klp_rs_stress_fn() as test_klp_rs_stress_patch
 * does (the call is counted in the target's test_klp_rs_stress_new_calls
 * and returns 2), and also counts the calls it got itself. What the patches
 * pass on from one to the next:
 *
 *  - the data of klp_state REPLACE_STATE_ID: a generation, the number of
 *    patches that held it, and the number of the last one that did;
 *  - shadow variable REPLACE_SHADOW_ID of the target's counter (only its
 *    address is used, as a key that lives as long as the target), which
 *    counts the patches enabled while it lived.
 *
 * The hand-over, done by the callbacks of the target's object (the target
 * is always loaded first: the patch needs its exported counter):
 *
 *  pre_patch    klp_get_prev_state(): if the patch being replaced has the
 *               state, adopt its data pointer as it is; else kzalloc the
 *               data (the first patch of a line). Nothing is changed yet,
 *               so a cancelled enable leaves the data as it found it.
 *  post_patch   this patch is in for good: bump the generation, record
 *               this patch as the holder, add one to the shadow variable
 *               (klp_shadow_get_or_alloc() creates it, zeroed, the first
 *               time), and keep what was seen for the handover parameter.
 *  post_unpatch runs when this patch is disabled, or when its enable is
 *               reverted; never when it is replaced, as the core runs no
 *               callbacks of a replaced patch. If the previous patch still
 *               holds the same data (a reverted replacement), it is left
 *               to it; else this patch is the last of the line and frees
 *               the data and the shadow variable.
 *
 * Parameters (/sys/module/test_klp_rs_replace_<n>/parameters/):
 *   handover (ro) "<generation> <shadow count> <previous holder>" as
 *                 post_patch found them (after bumping), the previous
 *                 holder -1 when this patch started the line;
 *                 "0 0 -1" before post_patch ran
 *   calls    (ro) calls of this patch's replacement so far
 *   released (ro) 1 once post_unpatch freed the data and the shadow
 *                 variable, 0 before
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/livepatch.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/slab.h>

#ifndef REPLACE_NR
#error "define REPLACE_NR, the patch's number, before including this file"
#endif

#define REPLACE_STATE_ID	0x5e1
#define REPLACE_SHADOW_ID	0x5e2

extern atomic_long_t test_klp_rs_stress_new_calls;

/* What klp_state REPLACE_STATE_ID's data points to. */
struct replace_state {
	unsigned long generation;
	int holder;
};

static struct klp_patch patch;

static atomic_long_t own_calls = ATOMIC_LONG_INIT(0);

/* Written by the callbacks (under the core's mutex), read by the params. */
static DEFINE_MUTEX(seen_lock);
static unsigned long seen_generation, seen_shadow;
static int seen_holder = -1;
static bool released;

static int livepatch_stress_fn(void)
{
	atomic_long_inc(&own_calls);
	atomic_long_inc(&test_klp_rs_stress_new_calls);
	return 2;
}

static int pre_patch(struct klp_object *obj)
{
	struct klp_state *state = klp_get_state(&patch, REPLACE_STATE_ID);
	struct klp_state *prev = klp_get_prev_state(REPLACE_STATE_ID);
	struct replace_state *data;

	if (!state)
		return -EINVAL;
	if (prev && prev->data) {
		state->data = prev->data;
		return 0;
	}
	data = kzalloc(sizeof(*data), GFP_KERNEL);
	if (!data)
		return -ENOMEM;
	data->holder = -1;
	state->data = data;
	pr_info("allocated the state data\n");
	return 0;
}

static void post_patch(struct klp_object *obj)
{
	struct klp_state *state = klp_get_state(&patch, REPLACE_STATE_ID);
	struct replace_state *data = state->data;
	unsigned long *enabled;

	enabled = klp_shadow_get_or_alloc(&test_klp_rs_stress_new_calls,
					  REPLACE_SHADOW_ID, sizeof(*enabled),
					  GFP_KERNEL, NULL, NULL);
	mutex_lock(&seen_lock);
	seen_holder = data->holder;
	data->generation++;
	data->holder = REPLACE_NR;
	seen_generation = data->generation;
	/* Left at 0 if the allocation failed: the test sees the mismatch. */
	if (enabled)
		seen_shadow = ++*enabled;
	mutex_unlock(&seen_lock);
}

static void post_unpatch(struct klp_object *obj)
{
	struct klp_state *state = klp_get_state(&patch, REPLACE_STATE_ID);
	struct klp_state *prev = klp_get_prev_state(REPLACE_STATE_ID);

	if (!state || !state->data)
		return;
	if (prev && prev->data == state->data) {
		/* A reverted replacement: the data stays with its holder. */
		state->data = NULL;
		return;
	}
	kfree(state->data);
	state->data = NULL;
	klp_shadow_free(&test_klp_rs_stress_new_calls, REPLACE_SHADOW_ID, NULL);
	mutex_lock(&seen_lock);
	released = !klp_shadow_get(&test_klp_rs_stress_new_calls,
				   REPLACE_SHADOW_ID);
	mutex_unlock(&seen_lock);
	pr_info("freed the state data and the shadow variable\n");
}

static int handover_get(char *buf, const struct kernel_param *kp)
{
	int ret;

	mutex_lock(&seen_lock);
	ret = scnprintf(buf, PAGE_SIZE, "%lu %lu %d\n", seen_generation,
			seen_shadow, seen_holder);
	mutex_unlock(&seen_lock);
	return ret;
}

static const struct kernel_param_ops handover_ops = {
	.get = handover_get,
};
module_param_cb(handover, &handover_ops, NULL, 0444);

static int calls_get(char *buf, const struct kernel_param *kp)
{
	return scnprintf(buf, PAGE_SIZE, "%ld\n", atomic_long_read(&own_calls));
}

static const struct kernel_param_ops calls_ops = {
	.get = calls_get,
};
module_param_cb(calls, &calls_ops, NULL, 0444);

static int released_get(char *buf, const struct kernel_param *kp)
{
	int ret;

	mutex_lock(&seen_lock);
	ret = scnprintf(buf, PAGE_SIZE, "%d\n", released);
	mutex_unlock(&seen_lock);
	return ret;
}

static const struct kernel_param_ops released_ops = {
	.get = released_get,
};
module_param_cb(released, &released_ops, NULL, 0444);

static struct klp_func funcs[] = {
	{
		.old_name = "test_klp_rs_stress_fn",
		.new_func = livepatch_stress_fn,
	}, { }
};

static struct klp_object objs[] = {
	{
		.name = "test_klp_rs_stress",
		.funcs = funcs,
		.callbacks = {
			.pre_patch = pre_patch,
			.post_patch = post_patch,
			.post_unpatch = post_unpatch,
		},
	}, { }
};

static struct klp_state states[] = {
	{
		.id = REPLACE_STATE_ID,
		.version = 1,
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
	.states = states,
	.replace = true,
};

static int __init test_klp_rs_replace_init(void)
{
	return klp_enable_patch(&patch);
}

static void __exit test_klp_rs_replace_exit(void)
{
}

module_init(test_klp_rs_replace_init);
module_exit(test_klp_rs_replace_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
