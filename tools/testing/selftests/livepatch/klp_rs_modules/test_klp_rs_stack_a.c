// SPDX-License-Identifier: GPL-2.0
/* klp-rs selftest: livepatch "a" of two stacked on cmdline_proc_show(). */
#include "test_klp_rs_stack.h"

MODULE_DESCRIPTION("klp-rs selftest: stacked cmdline_proc_show() patch a");
