#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs: .klp.rela sections for a module object whose header is broken
# (klp-convert --set-info/--misalign, see klp-convert.list): a target index
# past the section table or 0, a target that is not loaded, a target that is
# the symbol table (which the loader marks SHF_ALLOC), a table at a
# misaligned address. The loader never looks at these headers (it applies
# only vmlinux sections), so the core must: klp-rs refuses the patch when it
# is enabled, naming the section, and nothing is left behind. Upstream loads
# such a patch and reads or writes where the header points once the module
# object loads.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_TARGET=test_klp_rs_reloc_target

setup_config


start_test "relocation sections with a broken header"

SEC=".klp.rela.$MOD_TARGET..text"
refuse test_klp_rs_reloc_bad_info_end "Invalid module format"
refuse test_klp_rs_reloc_bad_info_zero "Invalid module format"
refuse test_klp_rs_reloc_bad_info_noalloc "Invalid module format"
refuse test_klp_rs_reloc_bad_info_symtab "Invalid module format"
refuse test_klp_rs_reloc_bad_misalign "Invalid module format"

check_result "% insmod test_modules/test_klp_rs_reloc_bad_info_end.ko
livepatch: section '$SEC' relocates section 65000, which does not exist
insmod: ERROR: could not insert module test_modules/test_klp_rs_reloc_bad_info_end.ko: Invalid module format
% insmod test_modules/test_klp_rs_reloc_bad_info_zero.ko
livepatch: section '$SEC' relocates section 0, which does not exist
insmod: ERROR: could not insert module test_modules/test_klp_rs_reloc_bad_info_zero.ko: Invalid module format
% insmod test_modules/test_klp_rs_reloc_bad_info_noalloc.ko
livepatch: section '$SEC' relocates a section that is not loaded
insmod: ERROR: could not insert module test_modules/test_klp_rs_reloc_bad_info_noalloc.ko: Invalid module format
% insmod test_modules/test_klp_rs_reloc_bad_info_symtab.ko
livepatch: section '$SEC' relocates section '.symtab', a table of symbols, strings or relocations
insmod: ERROR: could not insert module test_modules/test_klp_rs_reloc_bad_info_symtab.ko: Invalid module format
% insmod test_modules/test_klp_rs_reloc_bad_misalign.ko
livepatch: section '$SEC' is misaligned
insmod: ERROR: could not insert module test_modules/test_klp_rs_reloc_bad_misalign.ko: Invalid module format"
expect_no_stack_dump

exit 0
