// SPDX-License-Identifier: GPL-2.0
/* klp-rs stress: cumulative patch 4 of the ten in test_klp_rs_replace.h. */
#define REPLACE_NR 4
#include "test_klp_rs_replace.h"

MODULE_DESCRIPTION("klp-rs selftest: cumulative stress patch 4, handing its state over");
