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
. $(dirname $0)/klp-rs-functions.sh

setup_config


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
