#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs: livepatch relocations that klp-rs refuses and upstream does not,
# or refuses in its own words (see test-klp-rs-reloc.sh for the rest).
#
# - a .klp.rela section for an object the patch has no klp_object for:
#   upstream never applies it and loads the patch; klp-rs refuses the patch
# - a livepatch relocation of a type the x86 loader does not know: upstream
#   says "<module>: Unknown rela relocation: 9" from apply_relocate_add();
#   klp-rs names the section and the relocation before getting there

. $(dirname $0)/functions.sh

setup_config

fail() {
	echo -e "FAIL: $1\n"
	die "livepatch kselftest(s) failed"
}

# leftovers() - what a refused module must leave as it was
function leftovers() {
	ls $SYSFS_KLP_DIR
	cat /proc/modules
}

# refuse(module, error) - loading module must fail with error, as kmod's
# insmod words it (EINVAL: "Invalid parameters", ENOEXEC: "Invalid module
# format"), and leave no patch or module behind
function refuse() {
	local mod="$1" before after
	before=$(leftovers)
	log "% insmod test_modules/$mod.ko"
	ret=$(insmod "test_modules/$mod.ko" 2>&1)
	if [[ -z "$ret" ]]; then
		[[ -e $SYSFS_KLP_DIR/$mod ]] && disable_lp "$mod"
		unload_lp "$mod"
		fail "$mod unexpectedly loaded"
	fi
	log "$ret"
	[[ "$ret" == "insmod: ERROR: could not insert module test_modules/$mod.ko: $2" ]] ||
		fail "loading $mod: '$ret', expected error '$2'"
	after=$(leftovers)
	[[ "$before" == "$after" ]] ||
		fail "refusing $mod left something behind:$(diff <(echo "$before") <(echo "$after"))"
}


start_test "a relocation section for an object the patch does not patch"

refuse test_klp_rs_reloc_bad_secobj "Invalid parameters"

check_result "% insmod test_modules/test_klp_rs_reloc_bad_secobj.ko
livepatch: section '.klp.rela.no_such_obj..text' relocates object 'no_such_obj', which patch 'test_klp_rs_reloc_bad_secobj' does not patch
insmod: ERROR: could not insert module test_modules/test_klp_rs_reloc_bad_secobj.ko: Invalid parameters"


start_test "a livepatch relocation of an unsupported type"

refuse test_klp_rs_reloc_bad_type "Invalid module format"

check_result "% insmod test_modules/test_klp_rs_reloc_bad_type.ko
livepatch: section '.klp.rela.vmlinux..text': relocation 0 has unsupported type 9
insmod: ERROR: could not insert module test_modules/test_klp_rs_reloc_bad_type.ko: Invalid module format"

exit 0
