#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs benchmark (make bench): what patching costs.
#
#   BENCH call run=N state=unpatched|patched call_ns=X
#	time per call of klp_rs_call_bench_fn(), 1,000,000 calls timed in the
#	kernel, as is and redirected to an equivalent replacement by
#	klp_rs_call_bench_patch (the difference: ftrace + livepatch handler),
#	and redirected with 1,000 more functions patched (state=patched_1001:
#	klp_rs_many_patch_1000 too; left enabled at the end, as C takes
#	minutes to disable it)
#   BENCH call run=N state=many_unpatched|many_in_1000 call_ns=X
#	the same for klp_rs_many_fn_500() of klp_rs_many_target (called
#	through a function pointer), before and while it is one of the 1,000
#	functions klp_rs_many_patch_1000 redirects (on the Rust core, one
#	ftrace_ops holds all 1,000, and the handler finds the function's stack
#	in its table)
#   BENCH transition run=N load=idle|sleepers1000|busy4 patch_ms=X unpatch_ms=Y
#	patch_ms: kernel log time from "enabling patch" to "patching complete"
#	after insmod of klp_rs_call_bench_patch; unpatch_ms: from "starting
#	unpatching transition" to "unpatching complete" after echo 0 > enabled.
#	With nothing else running, with 1,000 sleeping user tasks, and with 4
#	busy user loops making syscalls. On an idle system the C core takes
#	1-2 s: tasks it cannot switch at once wait for its 1 s retry.

#
# With klp.bench=micro on the kernel command line only (a) runs, with
# klp.bench=transition only (b): make bench runs (a) under QEMU's -icount,
# where guest time counts executed instructions, and (b) on the wall clock,
# where timers and scheduling are what is measured.

cd "$(dirname "$0")" || exit 1
. ./klp-rs-bench-functions.sh

mode=$(sed -n 's/.*klp\.bench=\([a-z]*\).*/\1/p' /proc/cmdline)
TARGET=klp_rs_call_bench
PATCH=klp_rs_call_bench_patch
PARAMS=/sys/module/$TARGET/parameters
LP=/sys/kernel/livepatch/$PATCH
CALLS=1000000
RUNS=5
SLEEPERS=1000
BUSY=4

helpers=()

cleanup() {
	((${#helpers[@]})) && kill "${helpers[@]}" 2>/dev/null
	wait 2>/dev/null
	helpers=()
	[[ -e $LP ]] && echo 0 >"$LP/enabled" 2>/dev/null
	for ((i = 0; i < 200; i++)); do
		[[ -e /sys/module/$PATCH ]] || break
		rmmod $PATCH 2>/dev/null || sleep .1
	done
	rmmod $TARGET 2>/dev/null
}

die() {
	echo "bench-klp-rs-patch: $*" >&2
	cleanup
	exit 1
}

transition_done() { read_value "$LP/transition" && [[ $value == 0 ]]; }
patch_gone() { [[ ! -e $LP ]]; }
unreferenced() { read_value "/sys/module/$PATCH/refcnt" && [[ $value == 0 ]]; }

patch_on() {
	insmod test_modules/$PATCH.ko || die "insmod $PATCH failed"
	wait_until 120 transition_done || die "patching transition did not finish"
}

patch_off() {
	echo 0 >"$LP/enabled" || die "cannot disable $PATCH"
	wait_until 120 patch_gone || die "unpatching transition did not finish"
	wait_until 30 unreferenced || die "$PATCH is still referenced"
	rmmod $PATCH || die "rmmod $PATCH failed"
}

call_runs() { # state [parameters directory]
	local run params=${2:-$PARAMS}
	for ((run = 1; run <= RUNS; run++)); do
		echo $CALLS >"$params/run" || die "timing run failed"
		read_value "$params/ns_per_call"
		echo "BENCH call run=$run state=$1 call_ns=$value"
	done
	[[ -n ${2:-} ]] && return
	read_value "$PARAMS/sink"
	sums+=("$value")
}

transition_runs() { # load
	local run t0 t1 t2 t3
	load=$1
	for ((run = 1; run <= RUNS; run++)); do
		mark "transition load=$load run=$run"
		patch_on
		patch_off
		t0=$(stamp "livepatch: enabling patch '$PATCH'")
		t1=$(stamp "'$PATCH': patching complete")
		t2=$(stamp "'$PATCH': starting unpatching transition")
		t3=$(stamp "'$PATCH': unpatching complete")
		echo "BENCH transition run=$run load=$load patch_ms=$(ms "$t0" "$t1" "run $run, load=$load") unpatch_ms=$(ms "$t2" "$t3" "run $run, load=$load")"
	done
}

mem_available() { awk '/^MemAvailable:/ { print $2 " kB" }' /proc/meminfo; }

insmod test_modules/$TARGET.ko || die "insmod $TARGET failed"

# (a) cost of a call
if [[ $mode != transition ]]; then
	sums=()
	call_runs unpatched
	patch_on
	read_value "$LP/$TARGET/patched"
	[[ $value == 1 ]] || die "$TARGET is not patched"
	call_runs patched
	if [[ $mode == micro ]]; then
		insmod test_modules/klp_rs_many_target.ko || die "insmod klp_rs_many_target failed"
		call_runs many_unpatched /sys/module/klp_rs_many_target/parameters
		insmod test_modules/klp_rs_many_patch_1000.ko || die "insmod klp_rs_many_patch_1000 failed"
		many=/sys/kernel/livepatch/klp_rs_many_patch_1000
		wait_until 600 eval '[[ $(cat $many/transition 2>/dev/null) == 0 ]]' ||
			die "the patching transition of klp_rs_many_patch_1000 did not finish"
		call_runs patched_1001
		call_runs many_in_1000 /sys/module/klp_rs_many_target/parameters
		[[ ${sums[2]} == "${sums[1]}" ]] || die "with 1,000 more functions patched the replacement computed ${sums[2]}"
	fi
	patch_off
	[[ ${sums[0]} == "${sums[1]}" ]] || die "the replacement computed ${sums[1]}, the original ${sums[0]}"
fi
if [[ $mode == micro ]]; then
	rmmod $TARGET || die "rmmod $TARGET failed"
	# klp_rs_many_patch_1000 stays: the guest ends after the benchmarks.
	exit 0
fi

# (b) time to patch and unpatch
transition_runs idle

echo "bench-klp-rs-patch: MemAvailable $(mem_available) before $SLEEPERS sleepers"
start=$SECONDS
for ((i = 0; i < SLEEPERS; i++)); do
	sleep 1000 &
	helpers+=($!)
done
# Let every one of them reach its sleep.
wait_until 120 eval '[[ $(pgrep -c -x sleep) -ge $SLEEPERS ]]' || die "sleepers did not start"
sleep 2
echo "bench-klp-rs-patch: MemAvailable $(mem_available) with $SLEEPERS sleepers (started in $((SECONDS - start)) s)"
transition_runs sleepers$SLEEPERS
kill "${helpers[@]}"
wait 2>/dev/null
helpers=()

for ((i = 0; i < BUSY; i++)); do
	yes >/dev/null &
	helpers+=($!)
done
transition_runs busy$BUSY
kill "${helpers[@]}"
wait 2>/dev/null
helpers=()

rmmod $TARGET || die "rmmod $TARGET failed"
exit 0
