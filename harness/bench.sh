#!/usr/bin/env bash
# `make bench`: the benchmarks, on the C core and the Rust core in one run,
# then side by side (median of the runs of each). The micro-benchmarks run
# under -icount, the kernels taking turns (BENCH_ROUNDS, default 3); the
# transition and large-patch benchmarks once per kernel on the wall clock.
# Never run as tests: wall-clock timings under TCG are only comparable
# within one run. The results (a markdown table, the large-patch times as a
# plot) go to a folder whose path it prints last.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${KLP_CACHE:-$HOME/.cache/klp-rs}
mkdir -p "$cache/logs"
stamp=$(date +%Y%m%d-%H%M%S)
out=$cache/bench/$stamp
mkdir -p "$out"
benches=()
for b in "$repo"/tools/testing/selftests/livepatch/bench-*.sh; do
	benches+=("$(basename "$b")")
done

"$here/deps.sh" bench
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
		KLP_IMPL=$impl KLP_LOG=$log KLP_QEMU_EXTRA=$icount KLP_APPEND="klp.bench=micro klp.impl=$impl" \
			"$here/run-guest.sh" check "${benches[@]}" | grep -v '^KLP-'
		logs+=("$impl:$log")
	done
done
# Transitions on the wall clock: timers and scheduling are what they cost.
for impl in c rust; do
	echo "== $impl: transitions"
	log=$cache/logs/$stamp-$impl-transition.log
	KLP_IMPL=$impl KLP_LOG=$log KLP_APPEND="klp.bench=transition klp.impl=$impl" \
		"$here/run-guest.sh" check "${benches[@]}" | grep -v '^KLP-'
	logs+=("$impl:$log")
done

# BENCH <name> run=<n> <key>=<value>... ; group by name plus every key that
# is not a measurement (n=..., load=...), take the median per implementation.
for entry in "${logs[@]}"; do
	sed -n "s/^BENCH /${entry%%:*} /p" "${entry#*:}"
done >"$out/bench.txt"
cp "${logs[@]#*:}" "$out/" 2>/dev/null || true

# Text size of the livepatch core as built (kernel/livepatch, and the
# Rust core's arch/x86/livepatch), from llvm-size's Berkeley totals.
core_text() { # impl
	local build=$cache/$1/build objs=()
	for o in "$build"/kernel/livepatch/built-in.a "$build"/arch/x86/livepatch/built-in.a; do
		[[ -f $o ]] && objs+=("$o")
	done
	"llvm-size-$KLP_LLVM_VERSION" "${objs[@]}" | awk 'NR > 1 { t += $1 } END { print t + 0 }'
}
# shellcheck source=harness/toolchain.sh
. "$here/toolchain.sh"
for impl in c rust; do
	echo "$impl text run=1 core_text_b=$(core_text $impl)"
done >>"$out/bench.txt"

awk -v md="$out/results.md" -v dat="$out/many.dat" '
function extreme(list, want_max,   n, a, i, v) {
	n = split(list, a, " ")
	v = a[1] + 0
	for (i = 2; i <= n; i++) if (want_max ? a[i] + 0 > v : a[i] + 0 < v) v = a[i] + 0
	return v
}
function median(list,   n, a, i, j, t) {
	n = split(list, a, " ")
	if (n == 0) return ""
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function count(list,   a) { return split(list, a, " ") }
function cell(v) { return v == "" ? "-" : sprintf("%.2f", v) }
function range(list) { return list == "" ? "-" : sprintf("%.1f-%.1f", extreme(list, 0), extreme(list, 1)) }
{
	impl = $1; group = $2
	for (i = 3; i <= NF; i++) {
		split($i, kv, "=")
		if (kv[1] == "run") continue
		if (kv[1] ~ /_ns$|_ms$|_us$|_b$/) { metric[kv[1]] = 1; m[kv[1]] = kv[2] }
		else group = group " " $i
		if ($2 == "many" && kv[1] == "n") n = kv[2]
	}
	if (!(group in seen)) { seen[group] = 1; order[++ng] = group }
	for (k in m) { vals[group, k, impl] = vals[group, k, impl] " " m[k]; has[group, k] = 1 }
	if ($2 == "many") { sizes[n] = 1; for (k in m) many[n, k, impl] = many[n, k, impl] " " m[k] }
	delete m
}
END {
	printf "%-28s %-18s %10s %10s %7s  %-19s %-19s\n", "benchmark", "metric", "C", "Rust", "Rust/C", "C min-max", "Rust min-max"
	print "| benchmark | metric | C | Rust | Rust/C | C min-max (runs) | Rust min-max (runs) |" > md
	print "| --- | --- | ---: | ---: | ---: | --- | --- |" > md
	for (g = 1; g <= ng; g++) for (k in metric) if ((order[g], k) in has) {
		cv = vals[order[g], k, "c"]; rv = vals[order[g], k, "rust"]
		c = median(cv); r = median(rv)
		ratio = (c != "" && r != "" && c > 0) ? sprintf("%.3f", r / c) : "-"
		printf "%-28s %-18s %10s %10s %7s  %-19s %-19s\n", order[g], k, cell(c), cell(r), ratio, range(cv), range(rv)
		printf "| %s | %s | %s | %s | %s | %s (%d) | %s (%d) |\n", order[g], k, cell(c), cell(r), ratio,
			range(cv), count(cv), range(rv), count(rv) > md
	}
	# The large-patch medians, by size, for the plot; NaN where not run.
	print "# n c_enable_ms rust_enable_ms c_disable_ms rust_disable_ms" > dat
	ns = 0
	for (n in sizes) list[++ns] = n + 0
	for (i = 1; i <= ns; i++) for (j = i + 1; j <= ns; j++) if (list[j] < list[i]) { t = list[i]; list[i] = list[j]; list[j] = t }
	for (i = 1; i <= ns; i++) {
		n = list[i]
		line = n
		split("enable_ms disable_ms", ks, " ")
		for (kk = 1; kk <= 2; kk++) for (ii = 1; ii <= 2; ii++) {
			im = ii == 1 ? "c" : "rust"
			v = median(many[n, ks[kk], im])
			line = line " " (v == "" ? "NaN" : v)
		}
		print line > dat
	}
}' "$out/bench.txt"

gnuplot <<EOF || echo "bench: no plot (gnuplot failed)"
set terminal pngcairo size 900,600
set output "$out/many.png"
set title "Enable and disable of a patch of N functions (median, guest wall clock under TCG)"
set logscale xy
set xlabel "functions patched (N)"
set ylabel "ms"
set key top left
set grid
set datafile missing "NaN"
plot "$out/many.dat" using 1:2 with linespoints title "enable, C", \
     "" using 1:3 with linespoints title "enable, Rust", \
     "" using 1:4 with linespoints title "disable, C", \
     "" using 1:5 with linespoints title "disable, Rust"
EOF
echo
echo "results: $out (results.md, many.png, bench.txt, the guests' logs)"
echo "logs: $cache/logs/$stamp-*"
