#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A livepatch module made by the kernel's own klp-build, on klp-rs: run by
# make check-klp-build (harness/klp-build.sh) on the kernel klp-build built,
# not by make check, whose kernel the module does not match.
#
# The module comes from klp_build/cmdline.patch: /proc/cmdline gains
# " klp_build.processes=N", through calls to nr_processes() and a read of
# saved_command_line, neither of them exported. It must carry .klp.rela
# sections for them, the core must resolve them at load time, and the patch
# must come and go with the kernel log of any other livepatch.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_LIVEPATCH=livepatch_klp_rs_cmdline
KO=test_modules/$MOD_LIVEPATCH.ko
KLPCTL=/bin/klpctl

[[ -e $KO ]] || skip "$KO was not built (make check-klp-build builds it)"

setup_config
trap 'teardown $MOD_LIVEPATCH; cleanup' EXIT INT TERM HUP

start_test "a klp-build module: load, check, unload"

# What klp-build made: relocations against vmlinux symbols the module
# cannot link to, one per symbol, for the core to write at load time.
sections=$(readelf -SW $KO)
grep -qE '\.klp\.rela\.vmlinux\.' <<<"$sections" ||
	fail "$KO has no .klp.rela.vmlinux section:\n$sections"
symbols=$(readelf -sW $KO)
for sym in nr_processes saved_command_line; do
	grep -qE "\.klp\.sym\.vmlinux\.$sym,[0-9]+\$" <<<"$symbols" ||
		fail "$KO has no .klp.sym.vmlinux.$sym symbol"
done

orig=$(cat /proc/cmdline)
[[ "$orig" != *klp_build.processes=* ]] || fail "/proc/cmdline is patched before the load: '$orig'"

load_lp $MOD_LIVEPATCH

patched=$(cat /proc/cmdline)
echo "/proc/cmdline: $patched"
[[ "$patched" =~ ^"$orig"' klp_build.processes='([0-9]+)$ ]] ||
	fail "/proc/cmdline is '$patched', expected '$orig klp_build.processes=N'"
((BASH_REMATCH[1] > 0)) || fail "nr_processes() gave ${BASH_REMATCH[1]}"
expect_value $SYSFS_KLP_DIR/$MOD_LIVEPATCH/enabled 1
expect_value $SYSFS_KLP_DIR/$MOD_LIVEPATCH/transition 0
# klp-build makes atomic-replace patches unless told --no-replace.
expect_value $SYSFS_KLP_DIR/$MOD_LIVEPATCH/replace 1
expect_value $SYSFS_KLP_DIR/$MOD_LIVEPATCH/vmlinux/patched 1
[[ -d $SYSFS_KLP_DIR/$MOD_LIVEPATCH/vmlinux/cmdline_proc_show,1 ]] ||
	fail "no cmdline_proc_show,1 under the patch's vmlinux object:\n$(ls $SYSFS_KLP_DIR/$MOD_LIVEPATCH/vmlinux)"
if [[ -x $KLPCTL ]]; then
	out=$($KLPCTL list 2>&1) || fail "klpctl list failed:\n$out"
	echo "$out"
	expect_out "$MOD_LIVEPATCH .* 1 .* 0 .* 1 .* 1 .* vmlinux .* 1 .* cmdline_proc_show,1"
fi

disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH

[[ "$(cat /proc/cmdline)" == "$orig" ]] ||
	fail "/proc/cmdline is '$(cat /proc/cmdline)' after the unload, expected '$orig'"

check_log "% insmod $KO
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
expect_no_stack_dump

exit 0
