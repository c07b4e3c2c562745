// SPDX-License-Identifier: GPL-2.0
/* klp-rs stress: cumulative patch 8 of the ten in test_klp_rs_replace.h. */
#define REPLACE_NR 8
#include "test_klp_rs_replace.h"

MODULE_DESCRIPTION("klp-rs selftest: cumulative stress patch 8, handing its state over");
