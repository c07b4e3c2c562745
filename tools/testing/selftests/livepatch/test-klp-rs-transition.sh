#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs: the consistency model with a task held inside a to-be-patched
# function: a blocked patching transition, its reversal, forcing it, and the
# patch_state a forked child inherits while one is pending. After each
# transition no thread may keep TIF_PATCH_PENDING (the target's "flagged").
#
# test_klp_rs_busy runs a kthread that, while its "hold" parameter is 1,
# sleeps inside test_klp_rs_busy_fn(); test_klp_rs_busy_patch replaces that
# function with one returning 2 instead of 1. Reading the "probe" parameter
# calls the function in the reader's context; "last" is what the kthread's
# last call returned.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_TARGET=test_klp_rs_busy
MOD_LIVEPATCH=test_klp_rs_busy_patch
PARAMS=/sys/module/$MOD_TARGET/parameters
LP_DIR=$SYSFS_KLP_DIR/$MOD_LIVEPATCH

setup_config

# wait_value(path, value, seconds) - path must come to read value in time
function wait_value() {
	local i
	for ((i = 0; i <= $3 * 10; i++)); do
		read_value "$1"
		[[ "$value" == "$2" ]] && return
		sleep .1
	done
	fail "$1 is '$value' after $3s, expected '$2'"
}

# hold_kthread() - make the kthread enter test_klp_rs_busy_fn() and stay
function hold_kthread() {
	log "% echo 1 > $PARAMS/hold"
	echo 1 >"$PARAMS/hold"
	wait_value "$PARAMS/inside" Y 10
}

# release_kthread(ret) - let it go; its call must have returned ret
function release_kthread() {
	log "% echo 0 > $PARAMS/hold"
	echo 0 >"$PARAMS/hold"
	wait_value "$PARAMS/last" "$1" 10
	expect_value "$PARAMS/inside" N
}

# expect_blocked(seconds) - for that long, the transition must stay open
# with the kthread still inside the old function and unpatched (kept short:
# after 15 retries the core logs "signaling remaining tasks")
function expect_blocked() {
	local now=${EPOCHREALTIME/./}
	local end=$((now + $1 * 1000000))
	while :; do
		expect_value "$LP_DIR/transition" 1
		expect_value "/proc/$kpid/patch_state" 0
		expect_value "$PARAMS/inside" Y
		read_value "$PARAMS/flagged"
		((value >= 1)) || fail "$PARAMS/flagged is '$value' while the kthread blocks the transition"
		((${EPOCHREALTIME/./} < end)) || break
		sleep .1
	done
}

# expect_no_flags() - no thread is left with TIF_PATCH_PENDING
function expect_no_flags() {
	expect_value "$PARAMS/flagged" 0
}

# start_blocked() - load both modules with the kthread holding the
# patching transition open
function start_blocked() {
	load_mod $MOD_TARGET
	read_value "$PARAMS/pid"
	kpid=$value
	expect_value "/proc/$kpid/patch_state" -1
	expect_value "$PARAMS/probe" 1
	hold_kthread
	load_lp_nowait $MOD_LIVEPATCH
	expect_value "$LP_DIR/enabled" 1
}

# finish() - disable and remove both modules, the function back to the original
function finish() {
	disable_lp $MOD_LIVEPATCH
	unload_lp $MOD_LIVEPATCH
	expect_value "$PARAMS/probe" 1
	unload_mod $MOD_TARGET
}

LOG_START="% insmod test_modules/$MOD_TARGET.ko
% echo 1 > $PARAMS/hold
$MOD_TARGET: test_klp_rs_busy_fn: entered, sleeping until released
% insmod test_modules/$MOD_LIVEPATCH.ko
livepatch: enabling patch '$MOD_LIVEPATCH'
livepatch: '$MOD_LIVEPATCH': initializing patching transition
livepatch: '$MOD_LIVEPATCH': starting patching transition"

LOG_RELEASE="% echo 0 > $PARAMS/hold
$MOD_TARGET: test_klp_rs_busy_fn: released"

LOG_PATCHED="livepatch: '$MOD_LIVEPATCH': completing patching transition
livepatch: '$MOD_LIVEPATCH': patching complete"

LOG_UNPATCH="% echo 0 > $LP_DIR/enabled
livepatch: '$MOD_LIVEPATCH': initializing unpatching transition
livepatch: '$MOD_LIVEPATCH': starting unpatching transition
livepatch: '$MOD_LIVEPATCH': completing unpatching transition
livepatch: '$MOD_LIVEPATCH': unpatching complete"

LOG_UNLOAD="% rmmod $MOD_LIVEPATCH
% rmmod $MOD_TARGET"


# - the kthread sleeps in the patched function: the transition stays open
#   and the kthread unpatched; a process switched already sees the new code
# - released, the kthread returns from the old function and the transition
#   completes; the kthread's next call runs the replacement

start_test "a task sleeping in a patched function blocks the transition"

start_blocked
expect_value "$LP_DIR/$MOD_TARGET/patched" 1
expect_blocked 3
expect_value "$PARAMS/probe" 2
release_kthread 1
wait_value "$LP_DIR/transition" 0 60
expect_no_flags
expect_value "/proc/$kpid/patch_state" -1
expect_value "$PARAMS/probe" 2

log "% echo 1 > $PARAMS/hold"
echo 1 >"$PARAMS/hold"
wait_value "$PARAMS/last" 2 10
expect_value "$PARAMS/inside" N
log "% echo 0 > $PARAMS/hold"
echo 0 >"$PARAMS/hold"

finish

check_result "$LOG_START
$LOG_RELEASE
$LOG_PATCHED
% echo 1 > $PARAMS/hold
$MOD_LIVEPATCH: livepatch_busy_fn: called
% echo 0 > $PARAMS/hold
$LOG_UNPATCH
$LOG_UNLOAD"


# - with the kthread still held, disabling the patch reverses the
#   transition; the kthread is already in the target (unpatched) state, so
#   the reversed transition completes without it leaving the function

start_test "reversing a blocked patching transition"

start_blocked
expect_blocked 1
disable_lp $MOD_LIVEPATCH
expect_value "$PARAMS/inside" Y
expect_no_flags
expect_value "/proc/$kpid/patch_state" -1
expect_value "$PARAMS/probe" 1
release_kthread 1
unload_lp $MOD_LIVEPATCH
unload_mod $MOD_TARGET

check_result "$LOG_START
% echo 0 > $LP_DIR/enabled
livepatch: '$MOD_LIVEPATCH': reversing transition from patching to unpatching
livepatch: '$MOD_LIVEPATCH': starting unpatching transition
livepatch: '$MOD_LIVEPATCH': completing unpatching transition
livepatch: '$MOD_LIVEPATCH': unpatching complete
$LOG_RELEASE
$LOG_UNLOAD"


# - with the kthread still held, "force" completes the transition; the
#   kthread stays in the old function it sleeps in
# - force is refused once no transition is in progress
# - forcing a patching transition does not mark the patch forced: after
#   disabling, its module reference is dropped and the module can go

start_test "forcing a blocked patching transition"

start_blocked
expect_blocked 1
log "% echo 1 > $LP_DIR/force"
echo 1 >"$LP_DIR/force" || fail "writing 1 to $LP_DIR/force failed"
wait_value "$LP_DIR/transition" 0 30
expect_value "$PARAMS/inside" Y
# Forcing switched the kthread without its help: its flag must be gone too.
expect_no_flags
expect_value "/proc/$kpid/patch_state" -1
expect_value "$PARAMS/probe" 2
if echo 1 2>/dev/null >"$LP_DIR/force"; then
	fail "writing 1 to $LP_DIR/force outside a transition succeeded"
fi
release_kthread 1
disable_lp $MOD_LIVEPATCH
wait_value "/sys/module/$MOD_LIVEPATCH/refcnt" 0 10
unload_lp $MOD_LIVEPATCH
unload_mod $MOD_TARGET

check_result "$LOG_START
% echo 1 > $LP_DIR/force
livepatch: forcing remaining tasks to the patched state
$LOG_PATCHED
$LOG_RELEASE
$LOG_UNPATCH
$LOG_UNLOAD"


# - while the kthread holds the transition open, this shell has switched;
#   a child forked now, exec'ing or not, starts in its parent's state
# - once the transition is over every one of them reads -1

start_test "patch_state of a child forked during a transition"

start_blocked
expect_value "/proc/$kpid/patch_state" 0
read_value /proc/$$/patch_state
parent=$value
[[ "$parent" == 1 ]] || fail "/proc/$$/patch_state of the test shell is '$parent', expected 1"
child=$(cat /proc/self/patch_state)
[[ "$child" == "$parent" ]] || fail "a forked cat read its patch_state '$child', its parent's is '$parent'"
child=$(read_value /proc/$BASHPID/patch_state; echo "$value")
[[ "$child" == "$parent" ]] || fail "a forked subshell read its patch_state '$child', its parent's is '$parent'"
sleep 60 &
sleeper=$!
expect_value "/proc/$sleeper/patch_state" "$parent"
expect_value "$LP_DIR/transition" 1

release_kthread 1
wait_value "$LP_DIR/transition" 0 60
expect_no_flags
expect_value /proc/$$/patch_state -1
expect_value "/proc/$sleeper/patch_state" -1
expect_value "/proc/$kpid/patch_state" -1
child=$(cat /proc/self/patch_state)
[[ "$child" == -1 ]] || fail "a forked cat read its patch_state '$child' after the transition, expected -1"
kill "$sleeper"
wait "$sleeper" 2>/dev/null

finish

check_result "$LOG_START
$LOG_RELEASE
$LOG_PATCHED
$LOG_UNPATCH
$LOG_UNLOAD"

exit 0
