#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs benchmark (make bench): shadow variable costs at 1, 1,000 and
# 100,000 live variables, printed as "BENCH shadow live=N get_ns=X ...".
# A micro-benchmark: skipped on make bench's wall-clock boot
# (klp.bench=transition).
cd "$(dirname "$0")" || exit 1
grep -q 'klp\.bench=transition' /proc/cmdline && exit 0
for run in 1 2 3 4 5; do
	dmesg -C
	insmod test_modules/klp_rs_shadow_bench.ko || exit 1
	rmmod klp_rs_shadow_bench
	dmesg | sed -n "s/.*klp_rs_shadow_bench: \(live=.*\)/BENCH shadow run=$run \1/p"
done
