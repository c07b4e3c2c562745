#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs stress: ten cumulative livepatches (test_klp_rs_replace_0 ... _9)
# enabled 100 times in turn (or as many as fit in 240 s on a slow debug
# kernel; at least 10), each replacing the one before, while the four
# kthreads of test_klp_rs_stress call the function they all patch. Each
# replacement must finish its transition, retire the patch it replaced (its
# sysfs directory goes, its function is called no more) and take over, in
# its callbacks, the replaced patch's klp_state data and the shadow
# variable: after the i-th patch the state data has been through i
# generations, the shadow variable has counted i patches, and the last
# holder was the patch before. Every call lands in the original or a
# replacement, and each replacement call in exactly one patch's own count;
# disabling the last patch frees the data and the shadow variable, and no
# module reference is left behind. Upstream behaviour: it passes on the C
# core too.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_TARGET=test_klp_rs_stress
MOD_PREFIX=test_klp_rs_replace_
NR_PATCHES=10
CYCLES=$(stress_cycles 100)
# The time bound: the plain kernel does 100 replacements in about 75 s;
# the debug (KASAN) kernel takes about 18 s each, and must still have each
# of the ten patches replace another once.
BUDGET=240
MIN_CYCLES=$((CYCLES < 10 ? CYCLES : 10))
PARAMS=/sys/module/$MOD_TARGET/parameters

for ((n = 0; n < NR_PATCHES; n++)); do
	[[ -e test_modules/$MOD_PREFIX$n.ko ]] || skip "test_modules/$MOD_PREFIX$n.ko was not built"
done
[[ -e test_modules/$MOD_TARGET.ko ]] || skip "test_modules/$MOD_TARGET.ko was not built"

# The patch enabled last and the one it replaced.
cur=
prev=

# teardown_patches() - teardown for the patch modules still loaded, the
# newest first: after a failure, disabling it may hand the system back to
# the one it was replacing, which is disabled next
function teardown_patches() {
	local mods=() m n
	for m in "$cur" "$prev"; do
		[[ -n "$m" && -e /sys/module/$m ]] && mods+=("$m")
	done
	for ((n = 0; n < NR_PATCHES; n++)); do
		m=$MOD_PREFIX$n
		[[ "$m" == "$cur" || "$m" == "$prev" ]] && continue
		[[ -e /sys/module/$m ]] && mods+=("$m")
	done
	((${#mods[@]} == 0)) || teardown "${mods[@]}"
}

setup_config
trap 'teardown_patches; [[ -e $PARAMS/stop ]] && echo 1 >$PARAMS/stop; [[ -e /sys/module/$MOD_TARGET ]] && teardown $MOD_TARGET; cleanup' EXIT INT TERM HUP

function transition_done() {
	[[ "$(cat "$SYSFS_KLP_DIR/$1/transition" 2>/dev/null)" == 0 ]]
}

function patch_gone() {
	[[ ! -e "$SYSFS_KLP_DIR/$1" ]]
}

function unreferenced() {
	[[ "$(cat "/sys/module/$1/refcnt" 2>/dev/null)" == 0 ]]
}

# own_calls(module) - the calls the patch's replacement counted itself
function own_calls() {
	cat "/sys/module/$1/parameters/calls" 2>/dev/null
}

# called_more(module, count) - the patch's replacement counted more than
# count calls
function called_more() {
	local n
	n=$(own_calls "$1")
	[[ -n "$n" ]] && ((n > $2))
}

start_test "up to $CYCLES atomic replacements among $NR_PATCHES cumulative patches, state and shadow variable handed over"

load_mod $MOD_TARGET
refcnt=$(cat /sys/module/$MOD_TARGET/refcnt)
# Calls counted by the patches removed so far.
retired=0
begin=$SECONDS
for ((i = 1; i <= CYCLES && SECONDS - begin < BUDGET; i++)); do
	prev=$cur
	cur=$MOD_PREFIX$((i % NR_PATCHES))
	insmod test_modules/$cur.ko || die "cycle $i: insmod $cur failed"
	wait_for 60 transition_done $cur || die "cycle $i: $cur's patching transition did not finish"
	[[ "$(cat "$SYSFS_KLP_DIR/$cur/enabled")" == 1 ]] || die "cycle $i: $cur is not enabled"
	expected="$i $i $((i == 1 ? -1 : (i - 1) % NR_PATCHES))"
	got=$(cat /sys/module/$cur/parameters/handover)
	[[ "$got" == "$expected" ]] ||
		die "cycle $i: $cur's handover (generation, shadow count, previous holder) reads '$got', expected '$expected'"
	wait_for 10 called_more $cur 0 || die "cycle $i: no call reached $cur's replacement"
	[[ -n "$prev" ]] || continue
	wait_for 60 patch_gone $prev || die "cycle $i: $prev, replaced by $cur, is still in $SYSFS_KLP_DIR"
	# Replaced, its function must not run again, however long the
	# callers go on calling.
	before=$(own_calls $prev)
	now=$(own_calls $cur)
	wait_for 10 called_more $cur "$now" || die "cycle $i: the calls to $cur's replacement stopped at $now"
	wait_for 10 unreferenced $prev || die "cycle $i: $prev is still referenced"
	after=$(own_calls $prev)
	((after == before)) || die "cycle $i: $prev's replacement ran $((after - before)) times after $cur replaced it"
	retired=$((retired + after))
	rmmod $prev || die "cycle $i: rmmod $prev failed"
done
elapsed=$((SECONDS - begin))
done_cycles=$((i - 1))
echo 1 >$PARAMS/stop
read -r calls old new strays <$PARAMS/counts
last=$(own_calls $cur)
read -r generation shadow holder <"/sys/module/$cur/parameters/handover"
echo "replacements: $done_cycles of $CYCLES in ${elapsed}s; calls: $calls (original $old, replacements $new), strays $strays; state generation $generation, shadow count $shadow"
((done_cycles >= MIN_CYCLES)) || die "only $done_cycles replacements in ${BUDGET}s"
((strays == 0)) || die "$strays calls returned neither the original's nor a replacement's value"
((old + new == calls)) || die "$calls calls made, $((old + new)) counted by the functions"
((old > 0 && new > 0)) || die "the original ran $old times, the replacements $new"
((retired + last == new)) || die "the patches counted $((retired + last)) calls of their own, the target $new replacement calls"
((generation == done_cycles && shadow == done_cycles)) ||
	die "after $done_cycles patches the state generation is $generation and the shadow count $shadow"
disable_lp $cur
[[ "$(cat /sys/module/$cur/parameters/released)" == 1 ]] ||
	die "disabling $cur left the state data or the shadow variable behind"
unload_lp $cur
cur=
prev=
now=$(cat /sys/module/$MOD_TARGET/refcnt)
((now == refcnt)) || die "$MOD_TARGET's refcnt is $now, was $refcnt before the replacements"
unload_mod $MOD_TARGET
expect_no_stack_dump

exit 0
