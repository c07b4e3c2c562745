#!/bin/bash
# `make run`: show a livepatch at work on /proc/cmdline.
lp=/sys/kernel/livepatch/livepatch_sample

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

echo "KLP-DEMO cmdline-before: $(cat /proc/cmdline)"
echo "\$ insmod livepatch-sample.ko"
insmod /modules/livepatch-sample.ko || { echo "KLP-DEMO insmod failed"; exit 1; }
wait_transition
echo "KLP-DEMO cmdline-patched: $(cat /proc/cmdline)"
echo "\$ echo 0 > $lp/enabled"
echo 0 >$lp/enabled
wait_transition
for _ in $(seq 1 100); do [[ -d $lp ]] || break; sleep 0.1; done
echo "\$ rmmod livepatch_sample"
rmmod livepatch_sample
echo "KLP-DEMO cmdline-after: $(cat /proc/cmdline)"
