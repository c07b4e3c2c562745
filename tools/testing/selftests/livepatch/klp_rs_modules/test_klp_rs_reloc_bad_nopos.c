// SPDX-License-Identifier: GPL-2.0
/* klp-rs selftest: a livepatch symbol name without ",<position>" */
#define KLP_RS_BAD_SYM ".klp.sym.vmlinux.saved_command_line"
#include "test_klp_rs_reloc_bad.h"
