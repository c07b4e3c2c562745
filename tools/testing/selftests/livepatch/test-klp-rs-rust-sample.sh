#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs: a livepatch module written in Rust (samples/livepatch/
# rust_livepatch_sample.rs, kernel::klp_patch!) goes the way of a C one:
# modinfo, sysfs, the transition's log lines, /proc/cmdline patched and
# back, and stacked with the C test_klp_livepatch, which patches the same
# function.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_RUST=rust_livepatch_sample
MOD_C=test_klp_livepatch

# Built only with CONFIG_SAMPLE_RUST_LIVEPATCH (klp-rs's Kconfig).
[[ -e test_modules/$MOD_RUST.ko ]] || skip "test_modules/$MOD_RUST.ko was not built"

setup_config

function expect_cmdline {
	local want="$1"
	local have
	have=$(cat /proc/cmdline)
	if [[ "$have" != "$want" ]]; then
		echo -e "FAIL: /proc/cmdline is '$have', expected '$want'\n"
		die "livepatch kselftest(s) failed"
	fi
}

start_test "a livepatch module written in Rust"

if [[ "$(modinfo -F livepatch test_modules/$MOD_RUST.ko)" != "Y" ]]; then
	die "$MOD_RUST.ko is not marked as a livepatch in its modinfo"
fi
before=$(cat /proc/cmdline)

load_lp $MOD_RUST
expect_cmdline "this has been live patched"
for f in enabled transition force replace stack_order vmlinux/patched \
	 vmlinux/cmdline_proc_show,1; do
	[[ -e $SYSFS_KLP_DIR/$MOD_RUST/$f ]] || die "no $SYSFS_KLP_DIR/$MOD_RUST/$f"
done
[[ $(cat $SYSFS_KLP_DIR/$MOD_RUST/replace) == 0 ]] || die "replace is not 0"

load_lp $MOD_C
expect_cmdline "$MOD_C: this has been live patched"
[[ $(cat $SYSFS_KLP_DIR/$MOD_RUST/stack_order) == 1 ]] || die "stack_order of $MOD_RUST is not 1"
[[ $(cat $SYSFS_KLP_DIR/$MOD_C/stack_order) == 2 ]] || die "stack_order of $MOD_C is not 2"
disable_lp $MOD_C
unload_lp $MOD_C
expect_cmdline "this has been live patched"

disable_lp $MOD_RUST
unload_lp $MOD_RUST
expect_cmdline "$before"

check_log "% insmod test_modules/$MOD_RUST.ko
livepatch: enabling patch '$MOD_RUST'
livepatch: '$MOD_RUST': initializing patching transition
livepatch: '$MOD_RUST': starting patching transition
livepatch: '$MOD_RUST': completing patching transition
livepatch: '$MOD_RUST': patching complete
% insmod test_modules/$MOD_C.ko
livepatch: enabling patch '$MOD_C'
livepatch: '$MOD_C': initializing patching transition
livepatch: '$MOD_C': starting patching transition
livepatch: '$MOD_C': completing patching transition
livepatch: '$MOD_C': patching complete
% echo 0 > $SYSFS_KLP_DIR/$MOD_C/enabled
livepatch: '$MOD_C': initializing unpatching transition
livepatch: '$MOD_C': starting unpatching transition
livepatch: '$MOD_C': completing unpatching transition
livepatch: '$MOD_C': unpatching complete
% rmmod $MOD_C
% echo 0 > $SYSFS_KLP_DIR/$MOD_RUST/enabled
livepatch: '$MOD_RUST': initializing unpatching transition
livepatch: '$MOD_RUST': starting unpatching transition
livepatch: '$MOD_RUST': completing unpatching transition
livepatch: '$MOD_RUST': unpatching complete
% rmmod $MOD_RUST"

exit 0
