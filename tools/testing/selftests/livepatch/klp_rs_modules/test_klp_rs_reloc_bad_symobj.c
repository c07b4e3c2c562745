// SPDX-License-Identifier: GPL-2.0
/* klp-rs selftest: a symbol of a module that does not exist, in a .klp.rela.vmlinux section */
#define KLP_RS_BAD_SYM ".klp.sym.no_such_mod.foo,0"
#include "test_klp_rs_reloc_bad.h"
