#!/usr/bin/env bash
# `make bench`: the benchmarks, on the C core and the Rust core in one run,
# then side by side (median of the runs of each). The micro-benchmarks run
# under -icount, the kernels taking turns (BENCH_ROUNDS, default 3); the
# transition benchmark once per kernel on the wall clock. Never run as
# tests: wall-clock timings under TCG are only comparable within one run.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${KLP_CACHE:-$HOME/.cache/klp-rs}
mkdir -p "$cache/logs"
stamp=$(date +%Y%m%d-%H%M%S)
benches=()
for b in "$repo"/tools/testing/selftests/livepatch/bench-*.sh; do
	benches+=("$(basename "$b")")
done

"$here/deps.sh"
for impl in c rust; do
	echo "== $impl: build"
	KLP_IMPL=$impl "$here/build.sh" >"$cache/last-bench-build-$impl.log" 2>&1 ||
		{ tail -n 30 "$cache/last-bench-build-$impl.log"; exit 1; }
done

# Micro-benchmarks (the cost of a call, shadow variables) under -icount:
# guest time then counts executed instructions (shift=0: one per ns), so
# the figures are instruction costs, which host load does not move; the
# two kernels take turns, BENCH_ROUNDS times each.
rounds=${BENCH_ROUNDS:-3}
icount="-icount shift=0,sleep=off"
logs=()
for ((round = 1; round <= rounds; round++)); do
	for impl in c rust; do
		echo "== $impl: micro-benchmarks, round $round of $rounds ($icount)"
		log=$cache/logs/$stamp-$impl-micro-$round.log
		KLP_IMPL=$impl KLP_LOG=$log KLP_QEMU_EXTRA=$icount KLP_APPEND=klp.bench=micro \
			"$here/run-guest.sh" check "${benches[@]}" | grep -v '^KLP-'
		logs+=("$impl:$log")
	done
done
# Transitions on the wall clock: timers and scheduling are what they cost.
for impl in c rust; do
	echo "== $impl: transitions"
	log=$cache/logs/$stamp-$impl-transition.log
	KLP_IMPL=$impl KLP_LOG=$log KLP_APPEND=klp.bench=transition \
		"$here/run-guest.sh" check "${benches[@]}" | grep -v '^KLP-'
	logs+=("$impl:$log")
done

# BENCH <name> run=<n> <key>=<value>... ; group by name plus every key that
# is not a measurement (live=...), take the median per implementation.
echo
echo "== results (median of runs, and the range; unit in the metric name, where call and shadow"
echo "   ns are -icount ns, i.e. executed instructions; lower is better)"
for entry in "${logs[@]}"; do
	sed -n "s/^BENCH /${entry%%:*} /p" "${entry#*:}"
done | awk '
function extreme(list, want_max,   n, a, i, v) {
	n = split(list, a, " ")
	v = a[1] + 0
	for (i = 2; i <= n; i++) if (want_max ? a[i] + 0 > v : a[i] + 0 < v) v = a[i] + 0
	return v
}
function median(list,   n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	impl = $1; group = $2
	for (i = 3; i <= NF; i++) {
		split($i, kv, "=")
		if (kv[1] == "run") continue
		if (kv[1] ~ /_ns$|_ms$|_us$/) { metric[kv[1]] = 1; m[kv[1]] = kv[2] }
		else group = group " " $i
	}
	if (!(group in seen)) { seen[group] = 1; order[++ng] = group }
	for (k in m) { vals[group, k, impl] = vals[group, k, impl] " " m[k]; has[group, k] = 1 }
	delete m
}
END {
	printf "%-28s %-14s %10s %10s %7s  %-19s %-19s\n", "benchmark", "metric", "C", "Rust", "Rust/C", "C min-max", "Rust min-max"
	for (g = 1; g <= ng; g++) for (k in metric) if ((order[g], k) in has) {
		cv = vals[order[g], k, "c"]; rv = vals[order[g], k, "rust"]
		c = median(cv); r = median(rv)
		printf "%-28s %-14s %10.2f %10.2f %7.2f  %-19s %-19s\n", order[g], k, c, r, (c > 0 ? r / c : 0),
			sprintf("%.1f-%.1f", extreme(cv, 0), extreme(cv, 1)), sprintf("%.1f-%.1f", extreme(rv, 0), extreme(rv, 1))
	}
}'
echo "logs: $cache/logs/$stamp-*"
