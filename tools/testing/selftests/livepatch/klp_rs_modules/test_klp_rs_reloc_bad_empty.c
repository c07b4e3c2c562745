// SPDX-License-Identifier: GPL-2.0
/* klp-rs selftest: a livepatch symbol name with an empty symbol */
#define KLP_RS_BAD_SYM ".klp.sym.vmlinux.,0"
#include "test_klp_rs_reloc_bad.h"
