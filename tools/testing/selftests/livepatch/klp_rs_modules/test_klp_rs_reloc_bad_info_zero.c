// SPDX-License-Identifier: GPL-2.0
/*
 * klp-rs selftest: test_klp_rs_reloc_mod_patch under another name, whose
 * .klp.rela.test_klp_rs_reloc_target..text section klp-convert breaks as
 * klp-convert.list says. klp_enable_patch() must refuse it.
 */
#include "test_klp_rs_reloc_mod_patch.c"
