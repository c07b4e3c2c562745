// SPDX-License-Identifier: GPL-2.0
/* klp-rs selftest: a livepatch relocation of a type x86 does not apply (GOTPCREL) */
#define KLP_RS_BAD_SYM ".klp.sym.vmlinux.saved_command_line,0"
#include "test_klp_rs_reloc_bad.h"
