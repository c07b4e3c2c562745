#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs: a task blocked in a patched syscall, and the fake signal that
# moves it on: sent by the core after about 15 unsuccessful passes, or at
# once on writing 1 to /sys/kernel/livepatch/<patch>/signal.
#
# test_klp_rs_pause replaces the pause() syscall entry with an equivalent
# that counts its calls ("calls" parameter). GNU "sleep infinity" sleeps in
# pause(): it keeps the old entry on its stack, so neither the stack check
# nor the way back to user space switches it. A fake signal makes pause()
# return -ERESTARTNOHAND; the task switches on its way out and the syscall
# restarts, in the entry that is current for it now. /proc/<pid>/wchan names
# the entry it sleeps in.
#
# The first test passes on the upstream C core as well. The second uses the
# "signal" file, which upstream removed in 5.1 and klp-rs has: klp-rs only.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_LIVEPATCH=test_klp_rs_pause
MOD_OTHER=test_klp_livepatch
LP_DIR=$SYSFS_KLP_DIR/$MOD_LIVEPATCH
CALLS=/sys/module/$MOD_LIVEPATCH/parameters/calls
# x86_64: the syscall entry of pause() and its number
OLD_ENTRY=__x64_sys_pause
NEW_ENTRY=livepatch_sys_pause
NR_PAUSE=34

setup_config

sleeper=
function stop_sleeper() {
	[[ -n "$sleeper" ]] || return
	kill "$sleeper" 2>/dev/null
	wait "$sleeper" 2>/dev/null
	sleeper=
}

trap 'stop_sleeper; teardown $MOD_LIVEPATCH $MOD_OTHER; cleanup' EXIT INT TERM HUP

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

# wait_gone(path, seconds) - path must go away in time
function wait_gone() {
	local i
	for ((i = 0; i <= $2 * 10; i++)); do
		[[ -e "$1" ]] || return
		sleep .1
	done
	fail "$1 still exists after $2s"
}

# expect_sleeping(entry) - the sleeper is alive, asleep in pause(), in entry
function expect_sleeping() {
	local nr rest state
	kill -0 "$sleeper" 2>/dev/null || fail "the sleeper $sleeper is gone"
	read -r nr rest <"/proc/$sleeper/syscall"
	[[ "$nr" == $NR_PAUSE ]] || fail "the sleeper is in syscall '$nr', expected $NR_PAUSE (pause)"
	read -r _ _ state _ <"/proc/$sleeper/stat"
	[[ "$state" == S ]] || fail "the sleeper's state is '$state', expected S"
	expect_value "/proc/$sleeper/wchan" "$1"
}

# start_sleeper() - start "sleep infinity" and wait until it sleeps in pause()
function start_sleeper() {
	local i nr rest
	sleep infinity &
	sleeper=$!
	for ((i = 0; i < 100; i++)); do
		read -r nr rest <"/proc/$sleeper/syscall"
		[[ "$nr" == $NR_PAUSE ]] && break
		sleep .1
	done
	expect_sleeping $OLD_ENTRY
	expect_value "/proc/$sleeper/patch_state" -1
}

# expect_blocked(seconds, patch_state, entry) - for that long, the
# transition stays open and the sleeper unswitched in patch_state, asleep in
# entry (kept short of the core's own fake signal, about 15s in)
function expect_blocked() {
	local now=${EPOCHREALTIME/./}
	local end=$((now + $1 * 1000000))
	while :; do
		expect_value "$LP_DIR/transition" 1
		expect_value "/proc/$sleeper/patch_state" "$2"
		((${EPOCHREALTIME/./} < end)) || break
		sleep .1
	done
	expect_sleeping "$3"
}

# write_refused(path, label, [format]) - write label, or the printf format
# if given, to path in one write(2), which must be refused with -EINVAL;
# logged with the label
function write_refused() {
	local out
	log "% echo '$2' > $1"
	if out=$(printf -- "${3-$2}" 2>&1 >"$1"); then
		fail "writing '$2' to $1 succeeded"
	fi
	[[ "$out" == *"Invalid argument" ]] || fail "writing '$2' to $1: $out, expected Invalid argument"
}

LOG_LOAD="% insmod test_modules/$MOD_LIVEPATCH.ko
livepatch: enabling patch '$MOD_LIVEPATCH'
livepatch: '$MOD_LIVEPATCH': initializing patching transition
livepatch: '$MOD_LIVEPATCH': starting patching transition"

LOG_PATCHED="livepatch: '$MOD_LIVEPATCH': completing patching transition
livepatch: '$MOD_LIVEPATCH': patching complete"

LOG_DISABLE="% echo 0 > $LP_DIR/enabled
livepatch: '$MOD_LIVEPATCH': initializing unpatching transition
livepatch: '$MOD_LIVEPATCH': starting unpatching transition"

LOG_UNPATCHED="livepatch: '$MOD_LIVEPATCH': completing unpatching transition
livepatch: '$MOD_LIVEPATCH': unpatching complete"


# - a task asleep in pause() holds the patching transition open; after
#   about 15 passes the core sends it a fake signal, pause() restarts in the
#   new entry and the transition completes
# - on disabling, it holds the unpatching transition open from the new
#   entry; killed (and reaped), it no longer does

start_test "a task asleep in a patched syscall, the automatic fake signal"

start_sleeper
load_lp_nowait $MOD_LIVEPATCH
expect_value "$LP_DIR/enabled" 1
expect_value "$CALLS" 0
expect_blocked 2 0 $OLD_ENTRY
wait_value "$LP_DIR/transition" 0 60
expect_value "/proc/$sleeper/patch_state" -1
wait_value "$CALLS" 1 5
expect_sleeping $NEW_ENTRY

log "% echo 0 > $LP_DIR/enabled"
echo 0 >"$LP_DIR/enabled"
expect_blocked 1 1 $NEW_ENTRY
stop_sleeper
wait_gone "$LP_DIR" 10
expect_value "$CALLS" 1
unload_lp $MOD_LIVEPATCH

check_result "$LOG_LOAD
livepatch: signaling remaining tasks
$LOG_PATCHED
$LOG_DISABLE
$LOG_UNPATCHED
% rmmod $MOD_LIVEPATCH"
expect_no_stack_dump


# klp-rs only from here on.

# - with the sleeper holding the patching transition open, anything but
#   "1" written to signal is refused and sends nothing; so is "1" written
#   to the signal file of another patch, which is not in transition
# - "1" sends the fake signal at once: within 2s (the core's own signal
#   comes after about 15s) the sleeper has switched, the transition has
#   completed and pause() has restarted in the new entry, the sleeper still
#   asleep; nothing is logged for the signal
# - the same in the unpatching direction: the sleeper leaves the new entry
#   and sleeps in the old one again

REFUSED=(0 2 '1 1' Y on true 0x1 ' 1' ' ')

start_test "echo 1 > signal moves a task asleep in a patched syscall"

load_lp $MOD_OTHER
[[ -e "$SYSFS_KLP_DIR/$MOD_OTHER/signal" ]] || fail "$SYSFS_KLP_DIR/$MOD_OTHER/signal does not exist"
start_sleeper
load_lp_nowait $MOD_LIVEPATCH
expect_blocked 2 0 $OLD_ENTRY
for v in "${REFUSED[@]}"; do
	write_refused "$LP_DIR/signal" "$v"
done
write_refused "$LP_DIR/signal" "<LF>" '\n'
write_refused "$SYSFS_KLP_DIR/$MOD_OTHER/signal" 1
expect_blocked 1 0 $OLD_ENTRY
expect_value "$CALLS" 0

log "% echo 1 > $LP_DIR/signal"
echo 1 >"$LP_DIR/signal" || fail "writing 1 to $LP_DIR/signal failed"
wait_value "$LP_DIR/transition" 0 2
expect_value "/proc/$sleeper/patch_state" -1
wait_value "$CALLS" 1 2
expect_sleeping $NEW_ENTRY
write_refused "$LP_DIR/signal" 1

log "% echo 0 > $LP_DIR/enabled"
echo 0 >"$LP_DIR/enabled"
expect_blocked 2 1 $NEW_ENTRY
write_refused "$LP_DIR/signal" 0
expect_blocked 1 1 $NEW_ENTRY
log "% echo 1 > $LP_DIR/signal"
echo 1 >"$LP_DIR/signal" || fail "writing 1 to $LP_DIR/signal failed"
wait_gone "$LP_DIR" 2
expect_sleeping $OLD_ENTRY
expect_value "$CALLS" 1
unload_lp $MOD_LIVEPATCH
expect_sleeping $OLD_ENTRY
stop_sleeper
disable_lp $MOD_OTHER
unload_lp $MOD_OTHER

check_result "% insmod test_modules/$MOD_OTHER.ko
livepatch: enabling patch '$MOD_OTHER'
livepatch: '$MOD_OTHER': initializing patching transition
livepatch: '$MOD_OTHER': starting patching transition
livepatch: '$MOD_OTHER': completing patching transition
livepatch: '$MOD_OTHER': patching complete
$LOG_LOAD
$(for v in "${REFUSED[@]}"; do echo "% echo '$v' > $LP_DIR/signal"; done)
% echo '<LF>' > $LP_DIR/signal
% echo '1' > $SYSFS_KLP_DIR/$MOD_OTHER/signal
% echo 1 > $LP_DIR/signal
$LOG_PATCHED
% echo '1' > $LP_DIR/signal
$LOG_DISABLE
% echo '0' > $LP_DIR/signal
% echo 1 > $LP_DIR/signal
$LOG_UNPATCHED
% rmmod $MOD_LIVEPATCH
% echo 0 > $SYSFS_KLP_DIR/$MOD_OTHER/enabled
livepatch: '$MOD_OTHER': initializing unpatching transition
livepatch: '$MOD_OTHER': starting unpatching transition
livepatch: '$MOD_OTHER': completing unpatching transition
livepatch: '$MOD_OTHER': unpatching complete
% rmmod $MOD_OTHER"
expect_no_stack_dump

exit 0
