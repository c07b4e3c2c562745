#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs stress: 10,000 tasks created and ended while patching transitions
# are held open, in 20 rounds (on the slow debug kernel: 1,000 tasks, in as
# many of the rounds as fit in 100 s; at least 3).
#
# Each round, four kthreads that test_klp_rs_busy spawns sleep in
# test_klp_rs_busy_fn() (its "hold_spawned"), and test_klp_rs_busy_patch is
# loaded: its patching transition stays open. Meanwhile klp_rs_forker makes the
# round's share of short-lived processes (reaped by their parent) and
# threads (released as they exit). Then the hold is dropped: the spawned
# kthreads go from the old function straight to exit, still pending, and
# leave the task list that way. Every transition must complete, and after
# each no thread may keep TIF_PATCH_PENDING (the target's "flagged"). The
# patch is then disabled while more tasks come and go, and removed.
#
# The Rust core also counts pending tasks, to finish a transition the moment
# the last one switches; it warns (a stack dump, which fails this test) if
# that count goes below zero or is not zero when a transition completes.
# The pending kthreads leaving the task list are what a count that missed
# them would trip on: that warning is this test's check of the count (the
# periodic pass would still complete the transition, a second later; the
# time from the release to completion is printed, not bounded). The forked
# tasks are not pending themselves (their parent, the shell, switched in the
# transition's first pass): they load the task list with tasks coming and
# going while transitions start, run and complete. Upstream behaviour
# otherwise: it passes on the C core too.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_TARGET=test_klp_rs_busy
MOD_LIVEPATCH=test_klp_rs_busy_patch
PARAMS=/sys/module/$MOD_TARGET/parameters
LP_DIR=$SYSFS_KLP_DIR/$MOD_LIVEPATCH
FORKER=./klp_rs_forker
ROUNDS=$(stress_cycles 20)
SPAWN=4
# The time bound: the plain kernel needs about 4 s a round. The debug
# kernel makes a task in about 70 ms rather than 2, so it makes a tenth of
# the tasks, in rounds of about 10 s.
TASKS=10000
on_debug_kernel && TASKS=1000
BUDGET=$(stress_budget 300 100)
MIN_ROUNDS=$((ROUNDS < 5 ? ROUNDS : 5))
on_debug_kernel && MIN_ROUNDS=$((ROUNDS < 3 ? ROUNDS : 3))

for m in $MOD_TARGET $MOD_LIVEPATCH; do
	[[ -e test_modules/$m.ko ]] || skip "test_modules/$m.ko was not built"
done
[[ -x $FORKER ]] || skip "$FORKER was not built"

setup_config
trap 'teardown $MOD_LIVEPATCH; [[ -e $PARAMS/hold_spawned ]] && echo 0 >$PARAMS/hold_spawned; wait_for 60 no_spawned; teardown $MOD_TARGET; cleanup' EXIT INT TERM HUP

# (The helpers polled read with the shell's read, not cat: the debug kernel
# takes about 70 ms a fork.)
function transition_done() {
	read_value "$LP_DIR/transition"
	[[ "$value" == 0 ]]
}

function patch_gone() {
	[[ ! -e "$LP_DIR" ]]
}

function no_spawned() {
	[[ -e $PARAMS/spawned ]] || return 0
	read_value "$PARAMS/spawned"
	[[ "$value" == 0 ]]
}

function all_waiting() {
	read_value "$PARAMS/waiting"
	[[ "$value" == "$SPAWN" ]]
}

# spawned_pids() - the pids of the kthreads test_klp_rs_busy spawned
function spawned_pids() {
	local comm
	for comm in /proc/[0-9]*/comm; do
		read_value "$comm"
		[[ "$value" == test_klp_rs_spawn ]] && echo "${comm//[^0-9]/}"
	done
}

# count_made(output) - add the tasks klp_rs_forker says it made to $made
function count_made() {
	[[ "$1" =~ ^tasks=([0-9]+)\  ]] || fail "klp_rs_forker said '$1'"
	made=$((made + BASH_REMATCH[1]))
}

# forks(count) - make count tasks come and go
function forks() {
	local out
	out=$($FORKER "$1") || fail "klp_rs_forker $1 failed: $out"
	count_made "$out"
}

start_test "$TASKS tasks forking and exiting during $ROUNDS held patching transitions"

load_mod $MOD_TARGET
made=0
released_pending=0
took=()
begin=$SECONDS
for ((r = 1; r <= ROUNDS && SECONDS - begin < BUDGET; r++)); do
	# This round's share of the tasks (and a tenth more while unpatching).
	share=$((TASKS / ROUNDS + (r <= TASKS % ROUNDS)))

	echo 1 >$PARAMS/hold_spawned
	echo $SPAWN >$PARAMS/spawn || fail "round $r: spawning kthreads failed"
	wait_for 30 all_waiting || fail "round $r: only $value of $SPAWN spawned kthreads are waiting"
	pids=($(spawned_pids))
	((${#pids[@]} == SPAWN)) || fail "round $r: found ${#pids[@]} spawned kthreads, expected $SPAWN"
	insmod test_modules/$MOD_LIVEPATCH.ko || fail "round $r: insmod failed"

	forks "$share"

	# The spawned kthreads held the transition open all along, and were
	# never switched: they are still on the old function, and pending.
	expect_value "$LP_DIR/transition" 1
	for pid in "${pids[@]}"; do
		read_value "/proc/$pid/patch_state"
		[[ "$value" == 0 ]] || fail "round $r: spawned kthread $pid's patch_state is '$value' during the transition, expected 0"
	done
	released=${EPOCHREALTIME/./}
	echo 0 >$PARAMS/hold_spawned
	wait_for 60 no_spawned || fail "round $r: $value spawned kthreads did not exit"
	released_pending=$((released_pending + SPAWN))
	wait_for 60 transition_done || fail "round $r: the patching transition did not finish after the hold was dropped"
	took+=($(((${EPOCHREALTIME/./} - released) / 1000)))
	expect_value "$PARAMS/flagged" 0

	# Unpatching, with tasks coming and going around it.
	$FORKER $((share / 10)) >/tmp/klp-rs-forker.out 2>&1 &
	forker=$!
	echo 0 >"$LP_DIR/enabled" || fail "round $r: disabling failed"
	wait_for 60 patch_gone || fail "round $r: the unpatching transition did not finish"
	wait $forker || fail "round $r: klp_rs_forker failed: $(cat /tmp/klp-rs-forker.out)"
	read_value /tmp/klp-rs-forker.out
	count_made "$value"
	expect_value "$PARAMS/flagged" 0
	rmmod $MOD_LIVEPATCH || fail "round $r: rmmod failed"
done
elapsed=$((SECONDS - begin))
done_rounds=$((r - 1))
rm -f /tmp/klp-rs-forker.out
sorted=($(printf '%s\n' "${took[@]}" | sort -n))
echo "rounds: $done_rounds of $ROUNDS in ${elapsed}s; tasks created and ended: $made; kthreads released still pending: $released_pending; completion after the hold was dropped: median ${sorted[${#sorted[@]} / 2]} ms, slowest ${sorted[-1]} ms"
((done_rounds >= MIN_ROUNDS)) || die "only $done_rounds rounds in ${BUDGET}s"
unload_mod $MOD_TARGET
expect_no_stack_dump

exit 0
