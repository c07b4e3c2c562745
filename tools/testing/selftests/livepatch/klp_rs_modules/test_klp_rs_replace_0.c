// SPDX-License-Identifier: GPL-2.0
/* klp-rs stress: cumulative patch 0 of the ten in test_klp_rs_replace.h. */
#define REPLACE_NR 0
#include "test_klp_rs_replace.h"

MODULE_DESCRIPTION("klp-rs selftest: cumulative stress patch 0, handing its state over");
