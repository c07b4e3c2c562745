#!/bin/bash
# `make run`: show a livepatch at work on /proc/cmdline, twice: upstream's C
# sample (livepatch-sample.ko), then the same patch written in Rust
# (rust_livepatch_sample.ko, samples/livepatch/rust_livepatch_sample.rs),
# which only the Rust core's build has.

demo() {
	local ko=$1 lp=/sys/kernel/livepatch/$2 name=$2

	state() {
		printf '  enabled=%s transition=%s /proc/self/patch_state=%s\n' \
			"$(cat $lp/enabled 2>/dev/null)" "$(cat $lp/transition 2>/dev/null)" \
			"$(cat /proc/self/patch_state)"
	}
	wait_transition() {
		for _ in $(seq 1 300); do
			state
			[[ $(cat $lp/transition 2>/dev/null) == 1 ]] || return 0
			sleep 0.1
		done
		echo "  transition did not finish in 30 s"
		return 1
	}

	echo "KLP-DEMO $name cmdline-before: $(cat /proc/cmdline)"
	echo "\$ insmod $ko"
	insmod /modules/$ko || { echo "KLP-DEMO $name insmod failed"; return 1; }
	wait_transition
	echo "KLP-DEMO $name cmdline-patched: $(cat /proc/cmdline)"
	echo "\$ echo 0 > $lp/enabled"
	echo 0 >$lp/enabled
	wait_transition
	for _ in $(seq 1 100); do [[ -d $lp ]] || break; sleep 0.1; done
	echo "\$ rmmod $name"
	rmmod $name
	echo "KLP-DEMO $name cmdline-after: $(cat /proc/cmdline)"
}

demo livepatch-sample.ko livepatch_sample
if [[ -e /modules/rust_livepatch_sample.ko ]]; then
	echo "The same patch, written in Rust (samples/livepatch/rust_livepatch_sample.rs):"
	demo rust_livepatch_sample.ko rust_livepatch_sample
fi
