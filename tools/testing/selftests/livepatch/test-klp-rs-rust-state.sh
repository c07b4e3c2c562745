#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs: a cumulative livepatch written in Rust with a klp_state
# (samples/livepatch/rust_livepatch_state.rs, kernel::livepatch::StateData),
# handing its state over with upstream's C selftest modules in both
# directions: it takes the saved console log level over from
# test_klp_state.ko (version 1), test_klp_state3.ko takes it over from it,
# and version 1 may not replace it. The console log level shows whose
# saved value was restored.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_LIVEPATCH=rust_livepatch_state
MOD_STATE1=test_klp_state
MOD_STATE3=test_klp_state3

for m in $MOD_LIVEPATCH $MOD_STATE1 $MOD_STATE3; do
	[[ -e test_modules/$m.ko ]] || skip "test_modules/$m.ko was not built"
done

setup_config

function loglevel() {
	awk '{ print $1 }' /proc/sys/kernel/printk
}

# expect_loglevel(level, when) - the console log level is LEVEL
function expect_loglevel() {
	local now
	now=$(loglevel)
	[[ $now == "$1" ]] || die "console_loglevel is $now $2, not $1"
}

# What the patch sets while enabled (CONSOLE_LOGLEVEL_MOTORMOUTH), and what
# the guest has: the value every patch saves and must restore. A level of 15
# already would hide whether anything was restored.
MOTORMOUTH=15
ORIGINAL=$(loglevel)
[[ $ORIGINAL != "$MOTORMOUTH" ]] || die "the console log level is $MOTORMOUTH already"
# A test that stops midway leaves no patch and no raised level behind.
trap 'teardown $MOD_STATE3 $MOD_LIVEPATCH $MOD_STATE1; echo "$ORIGINAL" >/proc/sys/kernel/printk; cleanup' EXIT INT TERM HUP

# Its own lines, in the C modules' words (upstream's test-state.sh).
function enable_lines() {
	local mod=$1 how=$2
	echo "livepatch: enabling patch '$mod'
livepatch: '$mod': initializing patching transition
$mod: pre_patch_callback: vmlinux"
	if [[ $how == fix ]]; then
		echo "$mod: allocate_loglevel_state: allocating space to store console_loglevel"
	else
		echo "$mod: allocate_loglevel_state: space to store console_loglevel already allocated"
	fi
	echo "livepatch: '$mod': starting patching transition
livepatch: '$mod': completing patching transition
$mod: post_patch_callback: vmlinux"
	if [[ $how == fix ]]; then
		echo "$mod: fix_console_loglevel: fixing console_loglevel"
	else
		echo "$mod: fix_console_loglevel: taking over the console_loglevel change"
	fi
	echo "livepatch: '$mod': patching complete"
}

function disable_lines() {
	local mod=$1
	echo "% echo 0 > $SYSFS_KLP_DIR/$mod/enabled
livepatch: '$mod': initializing unpatching transition
$mod: pre_unpatch_callback: vmlinux
$mod: restore_console_loglevel: restoring console_loglevel
livepatch: '$mod': starting unpatching transition
livepatch: '$mod': completing unpatching transition
$mod: post_unpatch_callback: vmlinux
$mod: free_loglevel_state: freeing space for the stored console_loglevel
livepatch: '$mod': unpatching complete"
}

KEEP="^$MOD_LIVEPATCH: \|^$MOD_STATE1: \|^$MOD_STATE3: \|^insmod: "

start_test "a Rust cumulative patch with a system state"

load_lp $MOD_LIVEPATCH
expect_loglevel $MOTORMOUTH "with the patch enabled"
disable_lp $MOD_LIVEPATCH
expect_loglevel "$ORIGINAL" "after the patch was disabled"
unload_lp $MOD_LIVEPATCH

check_log_with "$KEEP" "% insmod test_modules/$MOD_LIVEPATCH.ko
$(enable_lines $MOD_LIVEPATCH fix)
$(disable_lines $MOD_LIVEPATCH)
% rmmod $MOD_LIVEPATCH"

start_test "the Rust patch takes the state over from a C patch it replaces"

load_lp $MOD_STATE1
expect_loglevel $MOTORMOUTH "with $MOD_STATE1 enabled"
load_lp $MOD_LIVEPATCH
unload_lp $MOD_STATE1
expect_loglevel $MOTORMOUTH "after $MOD_LIVEPATCH replaced $MOD_STATE1"
disable_lp $MOD_LIVEPATCH
# Only the level the C patch saved, and the Rust one took over, is the
# original: had the Rust patch saved its own, it would restore 15.
expect_loglevel "$ORIGINAL" "after $MOD_LIVEPATCH was disabled"
unload_lp $MOD_LIVEPATCH

check_log_with "$KEEP" "% insmod test_modules/$MOD_STATE1.ko
$(enable_lines $MOD_STATE1 fix)
% insmod test_modules/$MOD_LIVEPATCH.ko
$(enable_lines $MOD_LIVEPATCH take)
% rmmod $MOD_STATE1
$(disable_lines $MOD_LIVEPATCH)
% rmmod $MOD_LIVEPATCH"

start_test "a C patch takes the state over from the Rust patch it replaces"

load_lp $MOD_LIVEPATCH
load_lp $MOD_STATE3
unload_lp $MOD_LIVEPATCH
expect_loglevel $MOTORMOUTH "after $MOD_STATE3 replaced $MOD_LIVEPATCH"
disable_lp $MOD_STATE3
# The C patch restores from, and kfree()s, the KBox the Rust patch made.
expect_loglevel "$ORIGINAL" "after $MOD_STATE3 was disabled"
unload_lp $MOD_STATE3

check_log_with "$KEEP" "% insmod test_modules/$MOD_LIVEPATCH.ko
$(enable_lines $MOD_LIVEPATCH fix)
% insmod test_modules/$MOD_STATE3.ko
$(enable_lines $MOD_STATE3 take)
% rmmod $MOD_LIVEPATCH
$(disable_lines $MOD_STATE3)
% rmmod $MOD_STATE3"

start_test "an older state version may not replace the Rust patch"

load_lp $MOD_LIVEPATCH
load_failing_mod $MOD_STATE1
expect_loglevel $MOTORMOUTH "after $MOD_STATE1 was refused"
disable_lp $MOD_LIVEPATCH
expect_loglevel "$ORIGINAL" "after $MOD_LIVEPATCH was disabled"
unload_lp $MOD_LIVEPATCH

check_log_with "$KEEP" "% insmod test_modules/$MOD_LIVEPATCH.ko
$(enable_lines $MOD_LIVEPATCH fix)
% insmod test_modules/$MOD_STATE1.ko
livepatch: Livepatch patch ($MOD_STATE1) is not compatible with the already installed livepatches.
insmod: ERROR: could not insert module test_modules/$MOD_STATE1.ko: Invalid parameters
$(disable_lines $MOD_LIVEPATCH)
% rmmod $MOD_LIVEPATCH"

exit 0
