// SPDX-License-Identifier: GPL-2.0
/* klp-rs selftest: a .klp.rela section for an object the patch does not patch */
#define KLP_RS_BAD_SYM ".klp.sym.no_such_obj.foo,0"
#include "test_klp_rs_reloc_bad.h"
