#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Helpers shared by klp-rs' benchmarks (bench-klp-rs-*.sh), which run under
# make bench and set their own die().

# read_value(path) - the first line of path into $value, without a fork
read_value() {
	value=
	IFS= read -r value <"$1" 2>/dev/null || [[ -n "$value" ]]
}

# wait_until(seconds, command...) - poll every 20 ms
wait_until() {
	local i limit=$(($1 * 50))
	shift
	for ((i = 0; i < limit; i++)); do
		"$@" && return 0
		sleep .02
	done
	return 1
}

# mark(text) - a unique kernel log line; its text into $marker
mark() {
	marker="klp-rs-bench: $1 $(date +%s%N)"
	echo "$marker" >/dev/kmsg
}

# stamp(text) - kernel timestamp (s) of the first log line from $marker
# on (itself included) that contains text
stamp() {
	dmesg | awk -v m="$marker" -v t="$1" '
		index($0, m) { p = 1 }
		p && index($0, t) { sub(/^\[ */, ""); sub(/\].*/, ""); print; exit }'
}

# ms(from, to, what) - milliseconds between two stamps; a missing one
# stops the benchmark, naming what it measured
ms() {
	[[ -n $1 && -n $2 ]] || die "missing kernel log line ($3)"
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) * 1000 }'
}
