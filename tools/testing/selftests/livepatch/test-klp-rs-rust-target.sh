#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs: a function of a Rust module as a patch target. rust_livepatch_
# target_mod declares rust_klp_target_answer() with livepatch_patchable!
# (an ftrace entry as C functions have) and reports it at init and exit;
# rust_livepatch_target_patch, a Rust livepatch, makes it answer 43: for
# the loaded module, and for the module loaded again while the patch is on.

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

exit 0
