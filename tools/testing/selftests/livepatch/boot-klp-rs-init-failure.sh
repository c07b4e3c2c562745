#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs: every function the livepatch core exports must be safe to call at
# any time, also when its init stopped early. harness/check.sh boots the
# guest once per init step with livepatch.test_fail_init=<step>, which makes
# the core fail that step on purpose (1: before the first step, as if its
# initcall had not run yet), and runs this script there. Not a test-*.sh:
# it means nothing on a normal boot.
#
# Whatever step failed: other modules load and unload (the loader calls
# klp_module_coming/going for each), every klp_shadow_* function either
# works or fails cleanly (test_klp_rs_shadow_api says which), and a
# livepatch is refused with -ENODEV, leaving nothing behind. Shadow
# variables need none of the other steps, so they work unless their own
# step (5) or everything (1) was skipped.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

step=$(sed -n 's/.*livepatch\.test_fail_init=\([0-9]*\).*/\1/p' /proc/cmdline)
[[ -n "$step" ]] || fail "booted without livepatch.test_fail_init="
dmesg | grep -q "livepatch: test_fail_init: failing init step $step\$" ||
	fail "the livepatch core did not fail init step $step"
case $step in
1 | 5) shadow="fails cleanly" ;;
*) shadow="works" ;;
esac

setup_config


start_test "init step $step failed: modules, shadow variables, livepatches"

load_mod test_klp_rs_reloc_target secret=1
[[ "$(cat /sys/module/test_klp_rs_reloc_target/parameters/probe)" == original ]] ||
	fail "test_klp_rs_reloc_target does not work"
unload_mod test_klp_rs_reloc_target
load_mod test_klp_rs_shadow_api
unload_mod test_klp_rs_shadow_api
refuse test_klp_livepatch "No such device"
expect_no_stack_dump

check_result "% insmod test_modules/test_klp_rs_reloc_target.ko secret=1
% rmmod test_klp_rs_reloc_target
% insmod test_modules/test_klp_rs_shadow_api.ko
test_klp_rs_shadow_api: the shadow variable API $shadow
% rmmod test_klp_rs_shadow_api
% insmod test_modules/test_klp_livepatch.ko
livepatch: the livepatch core did not initialise: refusing the patch
insmod: ERROR: could not insert module test_modules/test_klp_livepatch.ko: No such device"

exit 0
