// SPDX-License-Identifier: GPL-2.0
/* klp-rs stress: cumulative patch 9 of the ten in test_klp_rs_replace.h. */
#define REPLACE_NR 9
#include "test_klp_rs_replace.h"

MODULE_DESCRIPTION("klp-rs selftest: cumulative stress patch 9, handing its state over");
