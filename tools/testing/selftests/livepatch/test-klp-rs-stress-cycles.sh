#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs stress: a livepatch enabled and disabled 500 times (or as many as
# fit in 150 s on the slow debug kernel; at least 20) while four kthreads
# call the function it patches in a loop (test_klp_rs_stress,
# test_klp_rs_stress_patch). Every call lands in the
# original or the replacement, none elsewhere, and the two counts add up to
# the calls made; no module reference is left behind. Upstream behaviour:
# it passes on the C core too.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_TARGET=test_klp_rs_stress
MOD_LIVEPATCH=test_klp_rs_stress_patch
CYCLES=$(stress_cycles 500)
# The time bound: the plain kernel runs 500 cycles in about 225 s; KASAN's
# kernel takes about 4.4 s a cycle.
BUDGET=$(stress_budget 500 150)
MIN_CYCLES=$((CYCLES < 20 ? CYCLES : 20))
PARAMS=/sys/module/$MOD_TARGET/parameters

for m in $MOD_TARGET $MOD_LIVEPATCH; do
	[[ -e test_modules/$m.ko ]] || skip "test_modules/$m.ko was not built"
done

setup_config
trap 'teardown $MOD_LIVEPATCH; [[ -e $PARAMS/stop ]] && echo 1 >$PARAMS/stop; teardown $MOD_TARGET; cleanup' EXIT INT TERM HUP

function transition_done() {
	[[ "$(cat "$SYSFS_KLP_DIR/$MOD_LIVEPATCH/transition" 2>/dev/null)" == 0 ]]
}

function patch_gone() {
	[[ ! -e "$SYSFS_KLP_DIR/$MOD_LIVEPATCH" ]]
}

start_test "up to $CYCLES enable/disable cycles while four threads call the patched function"

load_mod $MOD_TARGET
refcnt=$(cat /sys/module/$MOD_TARGET/refcnt)
begin=$SECONDS
for ((i = 1; i <= CYCLES && SECONDS - begin < BUDGET; i++)); do
	insmod test_modules/$MOD_LIVEPATCH.ko || die "cycle $i: insmod failed"
	wait_for 60 transition_done || die "cycle $i: the patching transition did not finish"
	echo 0 >"$SYSFS_KLP_DIR/$MOD_LIVEPATCH/enabled" || die "cycle $i: disabling failed"
	wait_for 60 patch_gone || die "cycle $i: the unpatching transition did not finish"
	rmmod $MOD_LIVEPATCH || die "cycle $i: rmmod failed"
	if ((i == 1)); then
		read -r calls old new strays <$PARAMS/counts
		((new > 0)) || die "cycle 1: no call reached the replacement"
	fi
done
elapsed=$((SECONDS - begin))
done_cycles=$((i - 1))
echo 1 >$PARAMS/stop
read -r calls old new strays <$PARAMS/counts
echo "cycles: $done_cycles of $CYCLES in ${elapsed}s; calls: $calls (original $old, replacement $new), strays: $strays"
((done_cycles >= MIN_CYCLES)) || die "only $done_cycles cycles in ${BUDGET}s"
((strays == 0)) || die "$strays calls returned neither the original's nor the replacement's value"
((old + new == calls)) || die "$calls calls made, $((old + new)) counted by the functions"
((old > 0 && new > 0)) || die "the original ran $old times, the replacement $new"
now=$(cat /sys/module/$MOD_TARGET/refcnt)
((now == refcnt)) || die "$MOD_TARGET's refcnt is $now, was $refcnt before the cycles"
unload_mod $MOD_TARGET
expect_no_stack_dump

exit 0
