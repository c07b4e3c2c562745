#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs: a patch of 1,000 functions (klp_rs_many_patch_1000, of the
# generated klp_rs_many_target), enabled while a kthread sleeps in one of
# them, so that its patching transition stays open; during it, the shell
# (switched) must run the new code of every function it samples and the
# kthread (not switched) the old code of the same functions. Then the
# transition completes, ftrace traces exactly the 1,000 functions, and
# disabling takes every one of them back (old code, nothing left traced).
# The times of the enabling insmod and of the disabling are printed, not
# bounded (make bench compares them with the C core). Upstream behaviour:
# it passes on the C core too.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_TARGET=klp_rs_many_target
MOD_LIVEPATCH=klp_rs_many_patch_1000
N=1000
PARAMS=/sys/module/$MOD_TARGET/parameters
LP_DIR=$SYSFS_KLP_DIR/$MOD_LIVEPATCH
TRACING=/sys/kernel/tracing
[[ -e $TRACING/enabled_functions ]] || TRACING=$SYSFS_DEBUG_DIR/tracing

for m in $MOD_TARGET $MOD_LIVEPATCH; do
	[[ -e test_modules/$m.ko ]] || skip "test_modules/$m.ko was not built"
done

setup_config
trap 'teardown $MOD_LIVEPATCH; [[ -e $PARAMS/hold ]] && echo 0 >$PARAMS/hold 2>/dev/null; rmmod $MOD_TARGET 2>/dev/null' EXIT

# sample(span, n, old, new) - calls n functions spread over the first span
# from this shell; old and new must be what they returned
function sample() {
	echo "$1" >$PARAMS/span || fail "cannot write span"
	echo "$2" >$PARAMS/sample || fail "cannot write sample"
	expect_value $PARAMS/old_calls "$3"
	expect_value $PARAMS/new_calls "$4"
}

# traced() - into $traced, how many target functions ftrace traces
function traced() {
	traced=$(grep -c '^klp_rs_many_fn_' "$TRACING/enabled_functions")
}

# ms_since(start) - milliseconds since $EPOCHREALTIME was start
function ms_since() {
	local now=$EPOCHREALTIME
	echo $(((${now/./} - ${1/./}) / 1000))
}

# holder_pid() - the pid of the kthread that hold=1 started
function holder_pid() {
	local comm
	for comm in /proc/[0-9]*/comm; do
		read_value "$comm"
		if [[ $value == klp_rs_many_hold ]]; then
			holder=${comm#/proc/}
			holder=${holder%/comm}
			return 0
		fi
	done
	return 1
}

start_test "a patch of $N functions, the old and the new code across its transition"

load_mod $MOD_TARGET
sample 5000 200 200 0
echo 1 >$PARAMS/hold || fail "cannot start the holding kthread"
holder_pid || fail "the holding kthread is not running"

start=$EPOCHREALTIME
load_lp_nowait $MOD_LIVEPATCH
enable_ms=$(ms_since "$start")
expect_value $LP_DIR/transition 1
traced
[[ $traced == "$N" ]] || fail "ftrace traces $traced of the $N functions during the transition"
# The shell switches in the transition's first pass (it sleeps outside the
# patched functions); the kthread cannot (it sleeps inside one).
loop_until 'read_value /proc/$$/patch_state; [[ $value == 1 ]]' ||
	fail "the shell did not switch: patch_state $value"
sample $N 100 0 100
sample 5000 100 80 20
expect_value /proc/$holder/patch_state 0
expect_value $LP_DIR/transition 1

# Released, the kthread samples while still inside the function that held
# it: the old code, every time.
echo $N >$PARAMS/span
echo 0 >$PARAMS/hold || fail "cannot release the holding kthread"
loop_until 'read_value $PARAMS/held_done; [[ $value == 1 ]]' ||
	fail "the holding kthread did not sample"
expect_value $PARAMS/held_old 100
expect_value $PARAMS/held_new 0
loop_until 'read_value $LP_DIR/transition; [[ $value == 0 ]]' ||
	fail "the patching transition did not complete"
sample $N 100 0 100
sample 5000 250 200 50

start=$EPOCHREALTIME
disable_lp $MOD_LIVEPATCH
disable_ms=$(ms_since "$start")
sample $N 100 100 0
traced
[[ $traced == 0 ]] || fail "ftrace still traces $traced functions after the patch was disabled"
unload_lp $MOD_LIVEPATCH
unload_mod $MOD_TARGET
expect_no_stack_dump

echo "enable ($N functions, the insmod): $enable_ms ms; disable (to the patch's removal): $disable_ms ms"

# (check_result keeps only lines with "livepatch:" or "test_klp": the
# shell's "% insmod" and "% echo" lines for these modules are left out.)
check_result "livepatch: enabling patch '$MOD_LIVEPATCH'
livepatch: '$MOD_LIVEPATCH': initializing patching transition
livepatch: '$MOD_LIVEPATCH': starting patching transition
livepatch: '$MOD_LIVEPATCH': completing patching transition
livepatch: '$MOD_LIVEPATCH': patching complete
livepatch: '$MOD_LIVEPATCH': initializing unpatching transition
livepatch: '$MOD_LIVEPATCH': starting unpatching transition
livepatch: '$MOD_LIVEPATCH': completing unpatching transition
livepatch: '$MOD_LIVEPATCH': unpatching complete"

exit 0
