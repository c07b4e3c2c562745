#!/usr/bin/env bash
# `make bench`: the benchmarks, on the C core and the Rust core, one after
# the other in one run, then side by side (median of the runs of each).
# Never run as tests: timings under TCG are only comparable within one run.
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
	echo "== $impl: ${benches[*]}"
	KLP_IMPL=$impl KLP_LOG=$cache/logs/$stamp-$impl-bench.log "$here/run-guest.sh" check "${benches[@]}" |
		grep -v '^KLP-'
done

# BENCH <name> run=<n> <key>=<value>... ; group by name plus every key that
# is not a measurement (live=...), take the median per implementation.
echo
echo "== results (median of runs, and the range; unit in the metric name; lower is better)"
for impl in c rust; do
	sed -n "s/^BENCH /$impl /p" "$cache/logs/$stamp-$impl-bench.log"
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
echo "logs: $cache/logs/$stamp-c-bench.log $cache/logs/$stamp-rust-bench.log"
