#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs: two livepatches stacked on one function, removed in the reverse
# order: each removal uncovers the one below, down to the original.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_A=test_klp_rs_stack_a
MOD_B=test_klp_rs_stack_b

setup_config

# expect_cmdline(text) - /proc/cmdline must read text
function expect_cmdline() {
	local got
	got=$(cat /proc/cmdline) || fail "cannot read /proc/cmdline"
	[[ "$got" == "$1" ]] || fail "/proc/cmdline is '$got', expected '$1'"
}

start_test "two livepatches stacked on cmdline_proc_show"

ORIG=$(cat /proc/cmdline)
[[ "$ORIG" != *"stacked patch"* ]] || fail "/proc/cmdline is patched before the test: '$ORIG'"

load_lp $MOD_A
expect_cmdline "$MOD_A: stacked patch"
check_sysfs_value $MOD_A stack_order 1

load_lp $MOD_B
expect_cmdline "$MOD_B: stacked patch"
check_sysfs_value $MOD_A stack_order 1
check_sysfs_value $MOD_B stack_order 2
check_sysfs_value $MOD_A enabled 1
check_sysfs_value $MOD_A transition 0

disable_lp $MOD_B
expect_cmdline "$MOD_A: stacked patch"
unload_lp $MOD_B
expect_cmdline "$MOD_A: stacked patch"
check_sysfs_value $MOD_A stack_order 1

disable_lp $MOD_A
expect_cmdline "$ORIG"
unload_lp $MOD_A
expect_cmdline "$ORIG"

check_result "% insmod test_modules/$MOD_A.ko
livepatch: enabling patch '$MOD_A'
livepatch: '$MOD_A': initializing patching transition
livepatch: '$MOD_A': starting patching transition
livepatch: '$MOD_A': completing patching transition
livepatch: '$MOD_A': patching complete
% insmod test_modules/$MOD_B.ko
livepatch: enabling patch '$MOD_B'
livepatch: '$MOD_B': initializing patching transition
livepatch: '$MOD_B': starting patching transition
livepatch: '$MOD_B': completing patching transition
livepatch: '$MOD_B': patching complete
% echo 0 > $SYSFS_KLP_DIR/$MOD_B/enabled
livepatch: '$MOD_B': initializing unpatching transition
livepatch: '$MOD_B': starting unpatching transition
livepatch: '$MOD_B': completing unpatching transition
livepatch: '$MOD_B': unpatching complete
% rmmod $MOD_B
% echo 0 > $SYSFS_KLP_DIR/$MOD_A/enabled
livepatch: '$MOD_A': initializing unpatching transition
livepatch: '$MOD_A': starting unpatching transition
livepatch: '$MOD_A': completing unpatching transition
livepatch: '$MOD_A': unpatching complete
% rmmod $MOD_A"

exit 0
