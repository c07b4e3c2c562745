#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The kpatch tool (the script of Debian's kpatch package, unchanged)
# on this kernel: load, list, info, unload of a livepatch module, and a load
# whose transition stalls, which kpatch answers by writing the patch's
# signal file where the kernel has one (klp-rs does; upstream C has not had
# it since 5.1, and there kpatch says it skips signalling).
#
# The stall: test_klp_rs_busy's kthread sleeps in test_klp_rs_busy_fn()
# while its "hold" is 1; kpatch waits 15 s before it calls a transition
# stalled.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_LIVEPATCH=test_klp_livepatch
MOD_TARGET=test_klp_rs_busy
MOD_BUSY_PATCH=test_klp_rs_busy_patch
PARAMS=/sys/module/$MOD_TARGET/parameters
KPATCH=/bin/kpatch
OUT=/tmp/klp-rs-kpatch.out

for m in $MOD_LIVEPATCH $MOD_TARGET $MOD_BUSY_PATCH; do
	[[ -e test_modules/$m.ko ]] || skip "test_modules/$m.ko was not built"
done
[[ -x $KPATCH ]] || skip "$KPATCH is not in the guest"

setup_config
trap '[[ -e $PARAMS/hold ]] && echo 0 >$PARAMS/hold; teardown $MOD_BUSY_PATCH $MOD_LIVEPATCH $MOD_TARGET; rm -f $OUT; cleanup' EXIT INT TERM HUP

# kp(args...) - run kpatch, which must succeed; its output in $out
function kp() {
	log "% kpatch $*"
	out=$($KPATCH "$@" 2>&1) || fail "kpatch $* failed:\n$out"
}

start_test "kpatch load, list, info, unload"

kp load test_modules/$MOD_LIVEPATCH.ko
expect_out "^loading patch module: test_modules/$MOD_LIVEPATCH.ko$"
[[ "$(cat /proc/cmdline)" == "$MOD_LIVEPATCH: this has been live patched" ]] ||
	fail "the patch is not in effect after kpatch load"
kp list
echo "$out"
expect_out "^Loaded patch modules:$"
expect_out "^$MOD_LIVEPATCH \[enabled\]$"
# The table kpatch 0.9.11 builds from each patch's stack_order file: which
# patch's code each patched function runs now.
expect_out "^Currently livepatched functions:$"
expect_out "^Module +Object +Function/Occurrence$"
expect_out "^$MOD_LIVEPATCH +vmlinux +cmdline_proc_show,1$"
kp info test_modules/$MOD_LIVEPATCH.ko
expect_out "^Patch information for test_modules/$MOD_LIVEPATCH.ko:$"
expect_out "^livepatch: +Y$"
kp unload $MOD_LIVEPATCH
expect_out "^disabling patch module: $MOD_LIVEPATCH$"
expect_out "^unloading patch module: $MOD_LIVEPATCH$"
[[ ! -e /sys/module/$MOD_LIVEPATCH ]] || fail "kpatch unload left the module loaded"
[[ ! -e $SYSFS_KLP_DIR/$MOD_LIVEPATCH ]] || fail "kpatch unload left the patch"

start_test "kpatch load of a patch whose transition stalls"

load_mod $MOD_TARGET
kpid=$(cat $PARAMS/pid)
echo 1 >$PARAMS/hold
wait_for 10 grep -q Y $PARAMS/inside || fail "the kthread did not enter the function"
log "% kpatch load test_modules/$MOD_BUSY_PATCH.ko &"
$KPATCH load test_modules/$MOD_BUSY_PATCH.ko >$OUT 2>&1 &
kpatch_pid=$!
wait_for 10 test -e $SYSFS_KLP_DIR/$MOD_BUSY_PATCH/transition || fail "kpatch did not load $MOD_BUSY_PATCH"
# While it waits: list shows the patch enabling and the stalled kthread.
kp list
expect_out "^$MOD_BUSY_PATCH \[enabling\.\.\.\]$"
expect_out "^Stalled processes:$"
expect_out "^$kpid test_klp_rs_busy$"
expect_out "^$MOD_BUSY_PATCH +$MOD_TARGET +test_klp_rs_busy_fn,1 +\(transition\)$"
if [[ -e $SYSFS_KLP_DIR/$MOD_BUSY_PATCH/signal ]]; then
	want="^signaling stalled process\(es\):$"
else
	want="Skipping manual process signaling"
fi
wait_for 40 grep -qE "$want" $OUT || fail "kpatch did not reach /$want/:\n$(cat $OUT)"
# Let the transition finish: kpatch's second wait sees it complete.
echo 0 >$PARAMS/hold
wait $kpatch_pid || fail "kpatch load failed after the kthread let go:\n$(cat $OUT)"
out=$(cat $OUT)
echo "$out"
expect_out "^patch transition has stalled!$"
expect_out "^transition complete \([0-9]+ seconds\)$"
expect_value "$SYSFS_KLP_DIR/$MOD_BUSY_PATCH/transition" 0
expect_value "$PARAMS/probe" 2
kp unload $MOD_BUSY_PATCH
[[ ! -e /sys/module/$MOD_BUSY_PATCH ]] || fail "kpatch unload left the module loaded"
expect_value "$PARAMS/flagged" 0
unload_mod $MOD_TARGET
expect_no_stack_dump

exit 0
