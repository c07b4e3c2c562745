#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs: a function of a Rust module as a patch target. rust_livepatch_
# target_mod declares rust_klp_target_answer() with livepatch_patchable!
# (an ftrace entry as C functions have) and reports it at init and exit;
# rust_livepatch_target_patch, a Rust livepatch, makes it answer 43: for
# the loaded module, and for the module loaded again while the patch is on.
# Then the consistency model: a worker sleeping inside the module's
# rust_klp_target_sleep() holds the patch's transition until it leaves, as
# a task in a patched C function does.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_TARGET=rust_livepatch_target_mod
MOD_PATCH=rust_livepatch_target_patch

for m in $MOD_TARGET $MOD_PATCH; do
	[[ -e test_modules/$m.ko ]] || skip "test_modules/$m.ko was not built"
done

setup_config

# The answers the target reported since the test began, one per line.
function answers {
	dmesg | awk -v last_dmesg="$LAST_DMESG" 'p; $0 == last_dmesg { p=1 }' |
		sed -n "s/.*$MOD_TARGET: answer at \(init\|exit\): \([0-9]*\)$/\1 \2/p"
}

start_test "livepatching a function of a Rust module"

load_mod $MOD_TARGET
grep -q '^rust_klp_target_answer$' <(awk '{print $3}' /proc/kallsyms) ||
	die "rust_klp_target_answer is not in kallsyms"
load_lp $MOD_PATCH
[[ $(cat $SYSFS_KLP_DIR/$MOD_PATCH/$MOD_TARGET/patched) == 1 ]] || die "$MOD_TARGET is not patched"
tracing=/sys/kernel/tracing
[[ -e $tracing/enabled_functions ]] || tracing=$SYSFS_DEBUG_DIR/tracing
grep -q '^rust_klp_target_answer' "$tracing/enabled_functions" ||
	die "rust_klp_target_answer is not in ftrace's enabled_functions"
unload_mod $MOD_TARGET
load_mod $MOD_TARGET
disable_lp $MOD_PATCH
unload_lp $MOD_PATCH
unload_mod $MOD_TARGET

want="init 42
exit 43
init 43
exit 42"
if [[ "$(answers)" != "$want" ]]; then
	echo -e "not ok\n\n$(diff -u --label expected --label result <(echo "$want") <(answers))\n"
	die "livepatch kselftest(s) failed"
fi

check_log "% insmod test_modules/$MOD_TARGET.ko
% insmod test_modules/$MOD_PATCH.ko
livepatch: enabling patch '$MOD_PATCH'
livepatch: '$MOD_PATCH': initializing patching transition
livepatch: '$MOD_PATCH': starting patching transition
livepatch: '$MOD_PATCH': completing patching transition
livepatch: '$MOD_PATCH': patching complete
% rmmod $MOD_TARGET
livepatch: reverting patch '$MOD_PATCH' on unloading module '$MOD_TARGET'
% insmod test_modules/$MOD_TARGET.ko
livepatch: applying patch '$MOD_PATCH' to loading module '$MOD_TARGET'
% echo 0 > $SYSFS_KLP_DIR/$MOD_PATCH/enabled
livepatch: '$MOD_PATCH': initializing unpatching transition
livepatch: '$MOD_PATCH': starting unpatching transition
livepatch: '$MOD_PATCH': completing unpatching transition
livepatch: '$MOD_PATCH': unpatching complete
% rmmod $MOD_PATCH
% rmmod $MOD_TARGET"


start_test "a task inside a patched Rust function holds the transition"

SLEEP_MS=6000
load_mod $MOD_TARGET sleep_ms=$SLEEP_MS
loop_until 'dmesg | grep -q "$MOD_TARGET: sleeping in rust_klp_target_sleep()"' ||
	die "the sleeper did not start"
load_lp_nowait $MOD_PATCH
sleep 2
[[ $(cat $SYSFS_KLP_DIR/$MOD_PATCH/transition) == 1 ]] ||
	die "the transition completed while a task slept in rust_klp_target_sleep()"
loop_until 'grep -q 0 $SYSFS_KLP_DIR/$MOD_PATCH/transition' ||
	die "failed to complete transition"
disable_lp $MOD_PATCH
unload_lp $MOD_PATCH
unload_mod $MOD_TARGET

# The sleeper left before the transition completed.
order=$(dmesg | awk -v last_dmesg="$LAST_DMESG" 'p; $0 == last_dmesg { p=1 }' |
	sed -n -e "s/.*$MOD_TARGET: \(left\) rust_klp_target_sleep() after $SLEEP_MS ms$/\1/p" \
	       -e "s/.*'$MOD_PATCH': \(completing\) patching transition$/\1/p")
if [[ "$order" != "left
completing" ]]; then
	echo -e "not ok: the sleeper left and the transition completed in this order:\n$order\n"
	die "livepatch kselftest(s) failed"
fi

check_log "% insmod test_modules/$MOD_TARGET.ko sleep_ms=$SLEEP_MS
% insmod test_modules/$MOD_PATCH.ko
livepatch: enabling patch '$MOD_PATCH'
livepatch: '$MOD_PATCH': initializing patching transition
livepatch: '$MOD_PATCH': starting patching transition
livepatch: '$MOD_PATCH': completing patching transition
livepatch: '$MOD_PATCH': patching complete
% echo 0 > $SYSFS_KLP_DIR/$MOD_PATCH/enabled
livepatch: '$MOD_PATCH': initializing unpatching transition
livepatch: '$MOD_PATCH': starting unpatching transition
livepatch: '$MOD_PATCH': completing unpatching transition
livepatch: '$MOD_PATCH': unpatching complete
% rmmod $MOD_PATCH
% rmmod $MOD_TARGET"

exit 0
