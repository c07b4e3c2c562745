#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs: /proc/<pid>/patch_state and <object>/patched around a transition,
# which the upstream scripts never read.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_LIVEPATCH=test_klp_livepatch

setup_config

# expect_state(pid, value) - /proc/<pid>/patch_state must read value
function expect_state() {
	local got
	got=$(cat "/proc/$1/patch_state") || fail "cannot read /proc/$1/patch_state"
	[[ "$got" == "$2" ]] || fail "/proc/$1/patch_state is '$got', expected '$2'"
}

start_test "patch_state and patched before, after and without a transition"

sleep 1000 &
sleeper=$!

expect_state "$sleeper" -1
expect_state self -1

load_lp $MOD_LIVEPATCH

[[ "$(cat /proc/cmdline)" == "$MOD_LIVEPATCH: this has been live patched" ]] ||
	fail "/proc/cmdline not patched"
expect_state "$sleeper" -1
expect_state self -1
[[ "$(cat $SYSFS_KLP_DIR/$MOD_LIVEPATCH/vmlinux/patched)" == 1 ]] ||
	fail "vmlinux/patched is not 1 after the patching transition"
[[ "$(cat $SYSFS_KLP_DIR/$MOD_LIVEPATCH/transition)" == 0 ]] ||
	fail "transition is not 0 after load_lp"

disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH

[[ "$(cat /proc/cmdline)" != "$MOD_LIVEPATCH: this has been live patched" ]] ||
	fail "/proc/cmdline still patched after unload"
expect_state "$sleeper" -1

kill "$sleeper"
wait "$sleeper" 2>/dev/null

check_result "% insmod test_modules/$MOD_LIVEPATCH.ko
livepatch: enabling patch '$MOD_LIVEPATCH'
livepatch: '$MOD_LIVEPATCH': initializing patching transition
livepatch: '$MOD_LIVEPATCH': starting patching transition
livepatch: '$MOD_LIVEPATCH': completing patching transition
livepatch: '$MOD_LIVEPATCH': patching complete
% echo 0 > $SYSFS_KLP_DIR/$MOD_LIVEPATCH/enabled
livepatch: '$MOD_LIVEPATCH': initializing unpatching transition
livepatch: '$MOD_LIVEPATCH': starting unpatching transition
livepatch: '$MOD_LIVEPATCH': completing unpatching transition
livepatch: '$MOD_LIVEPATCH': unpatching complete
% rmmod $MOD_LIVEPATCH"

exit 0
