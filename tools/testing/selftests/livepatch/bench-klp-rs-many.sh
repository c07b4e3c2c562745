#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs benchmark (make bench): what large patches cost. Runs with
# klp.bench=transition (the wall clock); does nothing with klp.bench=micro.
#
#   BENCH many n=N run=R enable_ms=X disable_ms=Y
#	enable_ms: kernel log time from a mark written just before the insmod
#	of klp_rs_many_patch_<N> (N functions of klp_rs_many_target) to its
#	"patching complete": loading the patch module, finding its functions,
#	redirecting them, and the transition. disable_ms: from a mark just
#	before "echo 0 > enabled" to "unpatching complete".
#	N = 1, 100, 1000 on both cores (C's disable of 1,000 functions takes
#	about two minutes, so 3 runs there, 5 elsewhere), and 5000 on the
#	Rust core only (klp.impl=rust on the command line).
#   BENCH memory n=1000 run=R slab_per_func_b=X vmalloc_per_func_b=Y
#	/proc/meminfo's Slab and VmallocUsed with the 1,000-function patch
#	enabled, minus the same once it is disabled (its module still loaded),
#	per function, in bytes: what the core holds per patched function.

cd "$(dirname "$0")" || exit 1
. ./klp-rs-bench-functions.sh

mode=$(sed -n 's/.*klp\.bench=\([a-z]*\).*/\1/p' /proc/cmdline)
impl=$(sed -n 's/.*klp\.impl=\([a-z]*\).*/\1/p' /proc/cmdline)
[[ $mode == micro ]] && exit 0

TARGET=klp_rs_many_target
SIZES=(1 100 1000)
[[ $impl == rust ]] && SIZES+=(5000)

die() {
	echo "bench-klp-rs-many: $*" >&2
	for n in 1 100 1000 5000; do
		[[ -e /sys/kernel/livepatch/klp_rs_many_patch_$n ]] &&
			echo 0 >/sys/kernel/livepatch/klp_rs_many_patch_$n/enabled 2>/dev/null
	done
	exit 1
}

# meminfo() - "<Slab kB> <VmallocUsed kB>", after dropping reclaimable
# slab objects (dentries and inodes of sysfs files come and go)
meminfo() {
	sync
	echo 2 >/proc/sys/vm/drop_caches
	awk '/^Slab:/ { s = $2 } /^VmallocUsed:/ { v = $2 } END { print s, v }' /proc/meminfo
}

insmod test_modules/$TARGET.ko || die "insmod $TARGET failed"
for n in "${SIZES[@]}"; do
	patch=klp_rs_many_patch_$n
	lp=/sys/kernel/livepatch/$patch
	runs=5
	[[ $impl != rust && $n -ge 1000 ]] && runs=3
	for ((run = 1; run <= runs; run++)); do
		mark "many n=$n run=$run enable"
		insmod test_modules/$patch.ko || die "insmod $patch failed"
		wait_until 600 eval '[[ $(cat $lp/transition 2>/dev/null) == 0 ]]' ||
			die "the patching transition of $patch did not finish"
		enable_ms=$(ms "$(stamp "$marker")" "$(stamp "'$patch': patching complete")" "n=$n run=$run")
		[[ $n == 1000 ]] && read -r slab_on vmalloc_on < <(meminfo)

		mark "many n=$n run=$run disable"
		echo 0 >$lp/enabled || die "cannot disable $patch"
		wait_until 600 eval '[[ ! -e $lp ]]' || die "the unpatching transition of $patch did not finish"
		disable_ms=$(ms "$(stamp "$marker")" "$(stamp "'$patch': unpatching complete")" "n=$n run=$run")
		echo "BENCH many n=$n run=$run enable_ms=$enable_ms disable_ms=$disable_ms"
		if [[ $n == 1000 ]]; then
			read -r slab_off vmalloc_off < <(meminfo)
			echo "BENCH memory n=1000 run=$run" \
				"slab_per_func_b=$(((slab_on - slab_off) * 1024 / n))" \
				"vmalloc_per_func_b=$(((vmalloc_on - vmalloc_off) * 1024 / n))"
		fi
		wait_until 60 eval '[[ $(cat /sys/module/$patch/refcnt 2>/dev/null) == 0 ]]' ||
			die "$patch is still referenced"
		rmmod $patch || die "rmmod $patch failed"
	done
done
rmmod $TARGET || die "rmmod $TARGET failed"
exit 0
