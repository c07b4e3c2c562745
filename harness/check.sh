#!/usr/bin/env bash
# `make check`: host unit tests, kernel build, every guest test; one result
# line per test and a closing "N passed, N failed". Non-zero when anything failed.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${KLP_CACHE:-$HOME/.cache/klp-rs}
impl=${KLP_IMPL:-rust}
# make check-debug: the guest parts on the debug kernel; what does not depend
# on the kernel (host tests, formatting, layering, compile-fail) ran in make
# check. Results are named debug:<name>.
debug=${KLP_DEBUG:-0}
# The debug suite in two parts (KLP_SHARD=1 or 2), so that CI can run part
# 1 beside make check and part 2 after it: each guest keeps a core of its
# own. Part 1 takes KLP_SHARD_SPLIT percent (default 50) of the guest
# tests' time (harness/debug-weights); part 2 the rest, and the boots.
shard=${KLP_SHARD:-}
[[ $debug == 1 ]] || shard=
[[ -z $shard || $shard == 1 || $shard == 2 ]] || { echo "check: KLP_SHARD is 1 or 2" >&2; exit 2; }
flavour_suffix=
[[ $impl != rust ]] && flavour_suffix+=-$impl
[[ $debug == 1 ]] && flavour_suffix+=-debug
[[ -n $shard ]] && flavour_suffix+=-$shard
host=1
[[ -n ${TESTS:-} || $debug == 1 ]] && host=
export PATH="$HOME/.cargo/bin:$PATH"
# shellcheck source=harness/toolchain.sh
. "$here/toolchain.sh"
# shellcheck source=harness/results.sh
. "$here/results.sh"
mkdir -p "$cache"
results=$(mktemp "${TMPDIR:-/tmp}/klp-results.XXXXXX")
trap 'rm -f "$results"' EXIT
start=$SECONDS

summary() {
	[[ $debug == 1 ]] && sed -i -E 's/^(PASS|FAIL) /\1 debug:/' "$results"
	# One file per kernel, so that make check and make check-debug can run
	# side by side (.ci/run does).
	print_summary "$results" "$impl" $((SECONDS - start)) "$cache/last-summary${flavour_suffix}"
}

"$here/deps.sh" || { echo "FAIL dependencies" >>"$results"; summary; exit 1; }

# 1. Host-side unit tests of the pure logic shared with the kernel crate.
if [[ -f $repo/Cargo.toml && -n $host ]]; then
	echo "== cargo test"
	log=$(mktemp)
	(cd "$repo" && cargo test --workspace 2>&1) | tee "$log"
	rc=${PIPESTATUS[0]}
	p=$(grep -oE 'test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
	f=$(grep -oE '[0-9]+ failed;' "$log" | awk '{s+=$1} END {print s+0}')
	for ((i = 0; i < p; i++)); do echo "PASS cargo-test" >>"$results"; done
	for ((i = 0; i < f; i++)); do echo "FAIL cargo-test" >>"$results"; done
	if [[ $rc -ne 0 && $f -eq 0 ]]; then echo "FAIL cargo-test (exit $rc)" >>"$results"; fi
	grep -E '^test .* FAILED$' "$log" | sed 's/^/  /'
	rm -f "$log"
fi

# rustfmt over the core's crate, every file this repository adds to the
# kernel crate (also those only an upstream file's `mod` reaches), the Rust
# samples (with the tree's settings: edition 2021, Unix newlines, which cargo
# fmt's defaults match) and the host workspace.
if [[ -f $repo/kernel/livepatch/klp.rs && -n $host ]]; then
	kcrate=(kernel/livepatch/klp.rs)
	while read -r f; do kcrate+=("$f"); done < <(cd "$repo" && find rust samples -name '*.rs' 2>/dev/null | sort)
	if (cd "$repo" && rustfmt --edition 2021 --check "${kcrate[@]}" && cargo fmt --check); then
		echo "PASS rustfmt" >>"$results"
	else
		echo "FAIL rustfmt (run: rustfmt --edition 2021 ${kcrate[*]}; cargo fmt)" >>"$results"
	fi
fi

# The harness itself: reading results from a console log with binary bytes.
[[ -n $host ]] && "$here/test-results.sh" >>"$results"

# The core's layers (listed in its crate root): no edge goes up.
if [[ -n $host ]]; then
	layering=$("$here/layering.sh")
	echo "${layering:-FAIL layering the check printed nothing}" | tee -a "$results"
fi

# 2. The kernel and modules.
echo "== build ($impl)"
if ! "$here/build.sh" >"$cache/last-build.log" 2>&1; then
	echo "kernel build failed; last lines of $cache/last-build.log:"
	tail -n 40 "$cache/last-build.log" | sed 's/^/  | /'
	echo "FAIL kernel-build" >>"$results"
	summary
	exit 1
fi
echo "PASS kernel-build" >>"$results"

# kernel::klp_patch!'s compile-time checks: modules that must not build.
if [[ $impl == rust && $debug != 1 && ( -z ${TESTS:-} || ,$TESTS, == *,compile-fail,* ) ]]; then
	echo "== compile-fail"
	"$here/compile-fail.sh" | tee -a "$results"
fi

# 3. Guest tests: the upstream selftests, unmodified, then the project's own.
if [[ -n ${TESTS:-} ]]; then
	read -ra tests <<<"${TESTS//,/ }"
	for i in "${!tests[@]}"; do
		[[ ${tests[i]} == boot-* || ${tests[i]} == compile-fail ]] && unset 'tests[i]'
	done
	tests=("${tests[@]}")
else
	tests=(test-livepatch.sh test-callbacks.sh test-shadow-vars.sh test-state.sh
		test-ftrace.sh test-sysfs.sh test-syscall.sh test-kprobe.sh)
	for t in "$repo"/tools/testing/selftests/livepatch/test-*.sh; do
		# Rust livepatch modules need klp-rs's kernel crate API, which the
		# pristine tree of the C core does not have.
		[[ $impl == c && $t == */test-klp-rs-rust-* ]] && continue
		# Fault injection needs the debug kernel's FAULT_INJECTION.
		[[ $debug != 1 && $t == */test-klp-rs-fault-injection.sh ]] && continue
		[[ -f $t ]] && tests+=("$(basename "$t")")
	done
fi
# shard_tests(part, percent, test...) - the tests of that part, in their
# order: the longest first into part 1 while they fit its share
shard_tests() {
	local part=$1 percent=$2
	shift 2
	printf '%s\n' "$@" | awk -v part="$part" -v percent="$percent" -v weights="$here/debug-weights" '
		BEGIN { while ((getline line < weights) > 0) if (line !~ /^#/) { split(line, f, " "); w[f[1]] = f[2] } }
		{ name[NR] = $0; weight[NR] = ($0 in w) ? w[$0] : 60; total += weight[NR] }
		END {
			n = NR
			for (i = 1; i <= n; i++) idx[i] = i
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
				if (weight[idx[j]] > weight[idx[i]]) { t = idx[i]; idx[i] = idx[j]; idx[j] = t }
			share = total * percent / 100
			for (i = 1; i <= n; i++) if (sum + weight[idx[i]] <= share) { first[idx[i]] = 1; sum += weight[idx[i]] }
			for (i = 1; i <= n; i++) if ((part == 1) == (i in first)) print name[i]
		}'
}
if [[ -n $shard ]] && ((${#tests[@]})); then
	mapfile -t tests < <(shard_tests "$shard" "${KLP_SHARD_SPLIT:-50}" "${tests[@]}")
fi
if ((${#tests[@]})); then
	echo "== guest: ${tests[*]}"
	# On the debug kernel the fault-injection test alone takes about 12
	# minutes; the guest's default per-test limit is 15.
	test_timeout=${KLP_TEST_TIMEOUT:-}
	[[ $debug == 1 ]] && test_timeout=${test_timeout:-1800}
	KLP_RESULTS=$results KLP_TEST_TIMEOUT=$test_timeout "$here/run-guest.sh" check "${tests[@]}"
fi

# 4. One short boot per init step of the Rust core, failed on purpose
# (livepatch.test_fail_init=N): what the exported functions do after an
# init that stopped there. The C core has no such parameter.
init_failure=boot-klp-rs-init-failure.sh
if [[ $impl == rust && $shard != 1 && ( -z ${TESTS:-} || ,$TESTS, == *,$init_failure,* ) ]]; then
	# (Step 3, the layout check, is done at build time now.)
	for step in 1 2 4 5; do
		echo "== guest: $init_failure, init step $step failed"
		KLP_RESULTS=$results KLP_APPEND="livepatch.test_fail_init=$step" \
			KLP_RESULT_SUFFIX=":step$step" KLP_BOOT_TIMEOUT=300 \
			"$here/run-guest.sh" check "$init_failure"
	done
fi

# 5. The KUnit suites of what this repository adds to the kernel crate
# (rust/kernel/), run at boot: one result per case, by name; a case the
# sources declare and the guest did not report fails.
kunit=boot-kunit
if [[ $impl == rust && $shard != 1 && ( -z ${TESTS:-} || ,$TESTS, == *,$kunit,* ) ]]; then
	# Suites live in the files under rust/ and in what patches/ adds to
	# upstream's files.
	mapfile -t cases < <(find "$repo/rust" -name '*.rs' -exec cat {} + 2>/dev/null |
		cat - <(sed -n 's/^+//p' "$repo"/patches/*.patch) | kunit_cases /dev/stdin)
	# The doctests of the files this repository adds, by name; the whole
	# doctest suite (upstream's and those in patched files) as one result.
	mapfile -t doctests < <(doctest_cases $(find "$repo/rust" -name '*.rs' | sort))
	cases+=("${doctests[@]}")
	echo "== guest: $kunit, ${#cases[@]} KUnit cases"
	klog=$cache/logs/$(date +%Y%m%d-%H%M%S)-$$-kunit$flavour_suffix.log
	# loglevel=7: KUnit reports at KERN_INFO.
	if KLP_LOG=$klog KLP_APPEND="kunit.enable=1 loglevel=7" KLP_BOOT_TIMEOUT=300 \
		"$here/run-guest.sh" check >/dev/null; then
		collect_kunit "$klog" "${cases[@]}" >>"$results"
		collect_kunit_suite "$klog" rust_doctests_kernel >>"$results"
		# A splat during the suites fails the boot, whatever the cases said.
		if grep -aqE 'BUG:|WARNING:|Oops|KASAN:|UBSAN:|Call Trace:|possible (circular|recursive) locking|unreferenced object' "$klog"; then
			echo "FAIL $kunit kernel report during the KUnit suites (console log: $klog)" >>"$results"
		fi
	else
		echo "FAIL $kunit the guest did not finish (console log: $klog)" >>"$results"
	fi
	echo "run-guest: console log: $klog"
fi

summary
