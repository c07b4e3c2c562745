#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klpctl against the running kernel: list (table and JSON), load with its
# transition followed, disable, unload, wait, blocked on a stalled
# transition, signal, force, a load --timeout that reverses and unloads,
# the errors and their exit codes, --help and completions.
#
# The stall: test_klp_rs_busy's kthread sleeps in test_klp_rs_busy_fn()
# while its "hold" is 1, so test_klp_rs_busy_patch's patching transition
# cannot finish.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_LIVEPATCH=test_klp_livepatch
MOD_TARGET=test_klp_rs_busy
MOD_BUSY_PATCH=test_klp_rs_busy_patch
PARAMS=/sys/module/$MOD_TARGET/parameters
KLPCTL=/bin/klpctl

for m in $MOD_LIVEPATCH $MOD_TARGET $MOD_BUSY_PATCH; do
	[[ -e test_modules/$m.ko ]] || skip "test_modules/$m.ko was not built"
done
[[ -x $KLPCTL ]] || skip "$KLPCTL was not built"

setup_config
trap '[[ -e $PARAMS/hold ]] && echo 0 >$PARAMS/hold; teardown $MOD_BUSY_PATCH $MOD_LIVEPATCH $MOD_TARGET; cleanup' EXIT INT TERM HUP

# run(expected-exit, klpctl args...) - run klpctl; its output in $out
function run() {
	local want=$1 rc
	shift
	log "% klpctl $*"
	out=$($KLPCTL "$@" 2>&1)
	rc=$?
	((rc == want)) || fail "klpctl $*: exit $rc, expected $want; output:\n$out"
}

start_test "klpctl: list, load, disable, unload"

run 0 list
expect_out '^no livepatches$'
run 0 load test_modules/$MOD_LIVEPATCH.ko
echo "$out"
expect_out "^'$MOD_LIVEPATCH': enabled, transition complete in [0-9.]+s$"
[[ "$(cat /proc/cmdline)" == "$MOD_LIVEPATCH: this has been live patched" ]] ||
	fail "the patch is not in effect after klpctl load"
run 0 list
echo "$out"
expect_out "$MOD_LIVEPATCH .* 1 .* 0 .* 0 .* 1 .* vmlinux .* 1 .* cmdline_proc_show,1"
run 0 list --json
expect_out '"name": "test_klp_livepatch"'
expect_out '"enabled": true'
expect_out '"transition": false'
expect_out '"name": "cmdline_proc_show"'
expect_out '"sympos": 1'
# Enabling an enabled patch: the kernel's EINVAL, explained.
run 1 enable $MOD_LIVEPATCH
expect_out "it is enabled already"
run 0 disable $MOD_LIVEPATCH
expect_out "^'$MOD_LIVEPATCH': disabled$"
[[ ! -e $SYSFS_KLP_DIR/$MOD_LIVEPATCH ]] || fail "the patch is still there after klpctl disable"
run 0 unload $MOD_LIVEPATCH
[[ ! -e /sys/module/$MOD_LIVEPATCH ]] || fail "the module is still loaded after klpctl unload"
# Unload of an enabled patch disables it first.
run 0 load test_modules/$MOD_LIVEPATCH.ko
run 0 unload $MOD_LIVEPATCH
expect_out "^'$MOD_LIVEPATCH': unloaded$"
[[ ! -e /sys/module/$MOD_LIVEPATCH ]] || fail "klpctl unload left the module loaded"

start_test "klpctl: errors and their exit codes"

run 3 disable no_such_patch
expect_out "no such patch: 'no_such_patch'"
run 3 unload no_such_patch
run 3 blocked no_such_patch
run 3 wait no_such_patch
run 6 load test_modules/$MOD_TARGET.ko
expect_out "is not a livepatch module"
[[ ! -e /sys/module/$MOD_TARGET ]] || fail "klpctl loaded a module that is not a livepatch"
run 1 load /no/such/file.ko
run 2 force whatever
expect_out "with --yes"
# Only a livepatch module is klpctl's to unload.
load_mod $MOD_TARGET
run 6 unload $MOD_TARGET
[[ -e /sys/module/$MOD_TARGET ]] || fail "klpctl unloaded a module that is not a livepatch"
unload_mod $MOD_TARGET
run 2 load
# Not root: the kernel's EACCES on the sysfs file, and its EPERM on the
# module load, are exit 4 (busybox su, as a user the guest lacks otherwise).
grep -q '^nobody:' /etc/passwd || echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >>/etc/passwd
load_lp $MOD_LIVEPATCH
function run_as_nobody() {
	local want=$1 rc
	shift
	log "% su nobody: klpctl $*"
	out=$(su nobody -s /bin/sh -c "$KLPCTL $*" 2>&1)
	rc=$?
	((rc == want)) || fail "klpctl $* as nobody: exit $rc, expected $want; output:\n$out"
}
run_as_nobody 4 disable $MOD_LIVEPATCH
expect_out "permission denied \(are you root\?"
expect_value $SYSFS_KLP_DIR/$MOD_LIVEPATCH/enabled 1
run_as_nobody 4 unload $MOD_LIVEPATCH
[[ -e /sys/module/$MOD_LIVEPATCH ]] || fail "klpctl unloaded $MOD_LIVEPATCH for nobody"
run_as_nobody 4 load test_modules/$MOD_BUSY_PATCH.ko
expect_out "permission denied \(are you root\?"
[[ ! -e /sys/module/$MOD_BUSY_PATCH ]] || fail "klpctl loaded $MOD_BUSY_PATCH for nobody"
run_as_nobody 0 list
expect_out "$MOD_LIVEPATCH .* 1 .* 0 .* 0 .* 1 .* vmlinux"
disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH
run 5 --sysfs /tmp list
expect_out "livepatch is not in this kernel"
run 0 --help
expect_out "Exit codes:"
for cmd in list load unload enable disable wait blocked force signal completions; do
	run 0 $cmd --help
done
run 0 completions bash
expect_out "complete -F"

start_test "klpctl: a stalled transition: blocked, wait, signal, force"

load_mod $MOD_TARGET
kpid=$(cat $PARAMS/pid)
echo 1 >$PARAMS/hold
wait_for 10 grep -q Y $PARAMS/inside || fail "the kthread did not enter the function"
run 0 blocked
expect_out '^no transition in progress$'
insmod test_modules/$MOD_BUSY_PATCH.ko || fail "insmod $MOD_BUSY_PATCH failed"
run 7 wait --timeout 1
expect_out "held by $kpid test_klp_rs_busy"
run 0 blocked
echo "$out"
expect_out "^'$MOD_BUSY_PATCH': patching transition held by [0-9]+ task\(s\)$"
expect_out "^$kpid test_klp_rs_busy \(patch_state 0\)$"
expect_out '^  => \[<0>\] test_klp_rs_busy_fn\+0x[0-9a-f]+/0x[0-9a-f]+ \[test_klp_rs_busy\]$'
run 0 blocked --json
expect_out "\"pid\": $kpid"
expect_out '"patched": true'
if [[ -e $SYSFS_KLP_DIR/$MOD_BUSY_PATCH/signal ]]; then
	run 0 signal $MOD_BUSY_PATCH
	expect_out "signalled"
else
	run 1 signal $MOD_BUSY_PATCH
	expect_out "no signal file"
fi
run 2 force $MOD_BUSY_PATCH
expect_value "$SYSFS_KLP_DIR/$MOD_BUSY_PATCH/transition" 1
run 0 force $MOD_BUSY_PATCH --yes
run 0 wait --timeout 30
run 0 wait $MOD_BUSY_PATCH
expect_value "$SYSFS_KLP_DIR/$MOD_BUSY_PATCH/transition" 0
echo 0 >$PARAMS/hold
wait_for 10 grep -q N $PARAMS/inside || fail "the kthread did not leave the function"
run 0 unload $MOD_BUSY_PATCH
expect_value "$PARAMS/flagged" 0

start_test "klpctl: load --timeout reverses a transition that cannot finish"

echo 1 >$PARAMS/hold
wait_for 10 grep -q Y $PARAMS/inside || fail "the kthread did not enter the function"
run 7 load test_modules/$MOD_BUSY_PATCH.ko --timeout 2 --grace 1
echo "$out"
expect_out "signalled the pending tasks|no signal file"
expect_out "reversing the transition"
expect_out "did not finish in [0-9.]+s; reversed and unloaded"
expect_out "held by $kpid test_klp_rs_busy \(patch_state 0\)"
expect_out "=> \[<0>\] test_klp_rs_busy_fn"
[[ ! -e $SYSFS_KLP_DIR/$MOD_BUSY_PATCH ]] || fail "the patch is still there after the reversal"
[[ ! -e /sys/module/$MOD_BUSY_PATCH ]] || fail "the module is still loaded after the reversal"
expect_value "$PARAMS/probe" 1
echo 0 >$PARAMS/hold
wait_for 10 grep -q N $PARAMS/inside || fail "the kthread did not leave the function"
expect_value "$PARAMS/flagged" 0
unload_mod $MOD_TARGET
expect_no_stack_dump

exit 0
