#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs: livepatch relocations that klp-rs refuses and upstream does not,
# or refuses in its own words (see test-klp-rs-reloc.sh for the rest).
#
# - a .klp.rela section for an object the patch has no klp_object for:
#   upstream never applies it and loads the patch; klp-rs refuses the patch
# - a module whose load the patch refuses after writing the patch's
#   relocations for it (the build test_klp_rs_reloc_target_noshow.ko lacks
#   the patched function): upstream leaves the relocations written, so every
#   later load of the module fails on them until the patch goes; klp-rs
#   clears them, and the good build then loads and is patched
# - a livepatch relocation of a type the x86 loader does not know: upstream
#   says "<module>: Unknown rela relocation: 9" from apply_relocate_add();
#   klp-rs names the section and the relocation before getting there

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

setup_config


start_test "a relocation section for an object the patch does not patch"

refuse test_klp_rs_reloc_bad_secobj "Invalid parameters"

check_result "% insmod test_modules/test_klp_rs_reloc_bad_secobj.ko
livepatch: section '.klp.rela.no_such_obj..text' relocates object 'no_such_obj', which patch 'test_klp_rs_reloc_bad_secobj' does not patch
insmod: ERROR: could not insert module test_modules/test_klp_rs_reloc_bad_secobj.ko: Invalid parameters"


start_test "a module load refused after the relocations for it were written"

MOD_TARGET=test_klp_rs_reloc_target
MOD_PATCH=test_klp_rs_reloc_mod_patch
PROBE=/sys/module/$MOD_TARGET/parameters/probe

load_lp $MOD_PATCH
load_failing_mod ${MOD_TARGET}_noshow
[[ ! -e /sys/module/$MOD_TARGET ]] || fail "the refused build of $MOD_TARGET is loaded"
load_mod $MOD_TARGET secret=4
probe=$(cat $PROBE)
[[ "$probe" == "patched secret=4 mix=704 addr="* ]] ||
	fail "$PROBE reads '$probe', expected the patched version"
disable_lp $MOD_PATCH
unload_lp $MOD_PATCH
unload_mod $MOD_TARGET

check_result "% insmod test_modules/$MOD_PATCH.ko
livepatch: enabling patch '$MOD_PATCH'
livepatch: '$MOD_PATCH': initializing patching transition
livepatch: '$MOD_PATCH': starting patching transition
livepatch: '$MOD_PATCH': completing patching transition
livepatch: '$MOD_PATCH': patching complete
% insmod test_modules/${MOD_TARGET}_noshow.ko
livepatch: symbol '${MOD_TARGET}_show' not found in symbol table
livepatch: failed to initialize patch '$MOD_PATCH' for module '$MOD_TARGET' (-22)
livepatch: patch '$MOD_PATCH' failed for module '$MOD_TARGET', refusing to load module '$MOD_TARGET'
insmod: ERROR: could not insert module test_modules/${MOD_TARGET}_noshow.ko: Invalid parameters
% insmod test_modules/$MOD_TARGET.ko secret=4
livepatch: applying patch '$MOD_PATCH' to loading module '$MOD_TARGET'
% echo 0 > $SYSFS_KLP_DIR/$MOD_PATCH/enabled
livepatch: '$MOD_PATCH': initializing unpatching transition
livepatch: '$MOD_PATCH': starting unpatching transition
livepatch: '$MOD_PATCH': completing unpatching transition
livepatch: '$MOD_PATCH': unpatching complete
% rmmod $MOD_PATCH
% rmmod $MOD_TARGET"


start_test "a livepatch relocation of an unsupported type"

refuse test_klp_rs_reloc_bad_type "Invalid module format"

check_result "% insmod test_modules/test_klp_rs_reloc_bad_type.ko
livepatch: section '.klp.rela.vmlinux..text': relocation 0 has unsupported type 9
insmod: ERROR: could not insert module test_modules/test_klp_rs_reloc_bad_type.ko: Invalid module format"

exit 0
