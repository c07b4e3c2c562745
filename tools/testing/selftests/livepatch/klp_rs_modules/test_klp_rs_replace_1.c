// SPDX-License-Identifier: GPL-2.0
/* klp-rs stress: cumulative patch 1 of the ten in test_klp_rs_replace.h. */
#define REPLACE_NR 1
#include "test_klp_rs_replace.h"

MODULE_DESCRIPTION("klp-rs selftest: cumulative stress patch 1, handing its state over");
