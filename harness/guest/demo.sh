#!/bin/bash
# `make run`: show a livepatch at work on /proc/cmdline with klpctl, twice:
# upstream's C sample (livepatch-sample.ko), then the same patch written in
# Rust (rust_livepatch_sample.ko, samples/livepatch/rust_livepatch_sample.rs),
# which only the Rust core's build has.
#
# What lies between KLP-DEMO-BEGIN and KLP-DEMO-END is the transcript the
# host shows (without kernel log lines, and without the KLP-DEMO lines it
# checks the outcome by).

# run(command...) - show the command as a user would type it, then run it
run() {
	echo "# $*"
	"$@"
}

demo() {
	local ko=$1 name=$2

	echo "KLP-DEMO $name cmdline-before: $(cat /proc/cmdline)"
	run cat /proc/cmdline
	run klpctl load /modules/$ko || { echo "KLP-DEMO $name load failed"; return 1; }
	run klpctl list
	run cat /proc/cmdline
	echo "KLP-DEMO $name cmdline-patched: $(cat /proc/cmdline)"
	run klpctl disable $name
	run klpctl unload $name
	run cat /proc/cmdline
	echo "KLP-DEMO $name cmdline-after: $(cat /proc/cmdline)"
}

# Kernel messages would land in the middle of the transcript's lines on the
# console; they stay in the kernel log (dmesg).
dmesg -n 1
echo KLP-DEMO-BEGIN
demo livepatch-sample.ko livepatch_sample
if [[ -e /modules/rust_livepatch_sample.ko ]]; then
	echo
	echo "The same patch, written in Rust (samples/livepatch/rust_livepatch_sample.rs):"
	demo rust_livepatch_sample.ko rust_livepatch_sample
fi
echo KLP-DEMO-END
