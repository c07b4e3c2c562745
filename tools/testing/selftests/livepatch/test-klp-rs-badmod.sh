#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs: livepatch modules with bad input are refused and leave nothing
# behind.
#
# test_klp_rs_bad replaces cmdline_proc_show() and, depending on its "flaw"
# parameter, has one thing wrong with it (see its source). After every
# refused load, /sys/kernel/livepatch, /proc/modules, the functions ftrace
# has attached to and /proc/cmdline must be as they were before, and the
# kernel must not have dumped a stack.
#
# The upstream C core is the reference: every test passes on it except the
# ones marked "klp-rs only" at the end, where klp-rs deliberately differs
# (a message upstream does not print, or a duplicate refused up front where
# upstream runs into sysfs). They are last because check_result stops the
# script at the first test that fails.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_BAD=test_klp_rs_bad
ORIG_CMDLINE=$(cat /proc/cmdline)
PATCHED_CMDLINE="$MOD_BAD: this has been live patched"

setup_config

trap 'teardown $MOD_BAD; cleanup' EXIT INT TERM HUP

# snapshot() - what a refused livepatch must not change
function snapshot() {
	echo "--- ls $SYSFS_KLP_DIR"
	ls -A "$SYSFS_KLP_DIR"
	echo "--- /proc/modules"
	cat /proc/modules
	echo "--- enabled_functions"
	cat "$SYSFS_TRACING_DIR/enabled_functions"
	echo "--- /proc/cmdline"
	cat /proc/cmdline
}

# expect_unchanged() - the state must match the snapshot in $BEFORE
function expect_unchanged() {
	local after
	after=$(snapshot)
	[[ "$after" == "$BEFORE" ]] ||
		fail "state changed:\n$(diff -u --label before --label after <(echo "$BEFORE") <(echo "$after"))"
	[[ ! -e /sys/module/$MOD_BAD ]] || fail "/sys/module/$MOD_BAD is left behind"
	[[ "$(cat /proc/cmdline)" == "$ORIG_CMDLINE" ]] || fail "/proc/cmdline is patched"
}

# refused(flaw) - load the module with that flaw; it must fail and change nothing
function refused() {
	BEFORE=$(snapshot)
	load_failing_mod $MOD_BAD flaw=$1
	expect_unchanged
}

INSMOD_ERR="insmod: ERROR: could not insert module test_modules/$MOD_BAD.ko"


# - the control: without a flaw the module loads, patches /proc/cmdline and
#   goes away again, leaving the same state behind as the refused ones must

start_test "the flawless control patch loads and unloads"

BEFORE=$(snapshot)
load_lp $MOD_BAD flaw=none
[[ "$(cat /proc/cmdline)" == "$PATCHED_CMDLINE" ]] || fail "/proc/cmdline is not patched"
disable_lp $MOD_BAD
unload_lp $MOD_BAD
expect_unchanged

check_result "% insmod test_modules/$MOD_BAD.ko flaw=none
livepatch: enabling patch '$MOD_BAD'
livepatch: '$MOD_BAD': initializing patching transition
livepatch: '$MOD_BAD': starting patching transition
livepatch: '$MOD_BAD': completing patching transition
livepatch: '$MOD_BAD': patching complete
% echo 0 > $SYSFS_KLP_DIR/$MOD_BAD/enabled
livepatch: '$MOD_BAD': initializing unpatching transition
livepatch: '$MOD_BAD': starting unpatching transition
livepatch: '$MOD_BAD': completing unpatching transition
livepatch: '$MOD_BAD': unpatching complete
% rmmod $MOD_BAD"
expect_no_stack_dump


# - a function name that is not in kallsyms

start_test "a symbol that does not exist"

refused unknown

check_result "% insmod test_modules/$MOD_BAD.ko flaw=unknown
livepatch: symbol 'klp_rs_no_such_function' not found in symbol table
$INSMOD_ERR: Invalid parameters"
expect_no_stack_dump


# - cmdline_proc_show at position 2, with only one in vmlinux (the same
#   name at position 1 in the same object is fine: no duplicate)

start_test "a symbol position past the last one"

refused sympos

check_result "% insmod test_modules/$MOD_BAD.ko flaw=sympos
livepatch: symbol position 2 for symbol 'cmdline_proc_show' in object 'vmlinux' not found
$INSMOD_ERR: Invalid parameters"
expect_no_stack_dump


# - the pre-patch callback fails with -ENODEV: the error reaches insmod,
#   the transition is cancelled and no other callback runs

start_test "a failing pre-patch callback"

refused pre_patch

check_result "% insmod test_modules/$MOD_BAD.ko flaw=pre_patch
livepatch: enabling patch '$MOD_BAD'
livepatch: '$MOD_BAD': initializing patching transition
$MOD_BAD: pre_patch_callback: vmlinux, returning -ENODEV
livepatch: pre-patch callback failed for object 'vmlinux'
livepatch: failed to enable patch '$MOD_BAD'
livepatch: '$MOD_BAD': canceling patching transition, going to unpatch
livepatch: '$MOD_BAD': completing unpatching transition
livepatch: '$MOD_BAD': unpatching complete
$INSMOD_ERR: No such device"
expect_no_stack_dump


# klp-rs only from here on.

# - c_start is in vmlinux twice and the patch gives no position.
#   klp-rs only: upstream prints the object as '(null)' (a NULL name for
#   vmlinux passed to printf); klp-rs prints 'vmlinux'.

start_test "an ambiguous symbol without a position"

refused ambiguous

check_result "% insmod test_modules/$MOD_BAD.ko flaw=ambiguous
livepatch: unresolvable ambiguity for symbol 'c_start' in object 'vmlinux'
$INSMOD_ERR: Invalid parameters"
expect_no_stack_dump


# - a function without new_func.
#   klp-rs only: upstream refuses with -EINVAL too but says nothing.

start_test "a function without a replacement"

refused no_new_func

check_result "% insmod test_modules/$MOD_BAD.ko flaw=no_new_func
livepatch: function 'version_proc_show' of patch '$MOD_BAD' has no new_func
$INSMOD_ERR: Invalid parameters"
expect_no_stack_dump


# - cmdline_proc_show listed at position 0 and at position 1, which are
#   the same function.
#   klp-rs only: upstream gets as far as creating the second sysfs
#   directory "cmdline_proc_show,1", dumps a stack ("sysfs: cannot create
#   duplicate filename") and fails with -EEXIST, which the module loader
#   turns into -EBUSY; klp-rs refuses the patch with -EINVAL first.

start_test "the same function twice in one object"

refused dup_func

check_result "% insmod test_modules/$MOD_BAD.ko flaw=dup_func
livepatch: function 'cmdline_proc_show,1' is listed twice in object 'vmlinux'
$INSMOD_ERR: Invalid parameters"
expect_no_stack_dump


# - two objects for vmlinux.
#   klp-rs only, as above: upstream dumps a stack for the duplicate
#   "vmlinux" directory and fails with -EBUSY.

start_test "the same object twice in one patch"

refused dup_object

check_result "% insmod test_modules/$MOD_BAD.ko flaw=dup_object
livepatch: object 'vmlinux' is listed twice in patch '$MOD_BAD'
$INSMOD_ERR: Invalid parameters"
expect_no_stack_dump


# - a module object with a name and no functions, before the vmlinux object.
#   Upstream walks the objects while either is set and refuses this with
#   -EINVAL (silently); klp-rs names the object.

start_test "an object without functions"

refused no_funcs

check_result "% insmod test_modules/$MOD_BAD.ko flaw=no_funcs
livepatch: object 'test_klp_rs_reloc_target' of patch '$MOD_BAD' has no functions
$INSMOD_ERR: Invalid parameters"
expect_no_stack_dump


# - a function with a replacement but no old_name: upstream refuses it
#   with -EINVAL too, silently.

start_test "a function without a name"

refused no_old_name

check_result "% insmod test_modules/$MOD_BAD.ko flaw=no_old_name
livepatch: a function of object 'vmlinux' in patch '$MOD_BAD' has no old_name
$INSMOD_ERR: Invalid parameters"
expect_no_stack_dump

exit 0
