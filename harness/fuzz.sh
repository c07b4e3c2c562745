#!/usr/bin/env bash
# `make fuzz`: run the libFuzzer target over the .klp.sym/.klp.rela name
# parsers (host/fuzz) for FUZZ_SECONDS (default 60), growing
# host/fuzz/corpus/. Installs cargo-fuzz when missing. Exits non-zero on a
# crash, whose input libFuzzer leaves in host/fuzz/artifacts/.
# FUZZ_COVERAGE=1 then prints line and region coverage of the parsers over
# the corpus.
#
# cargo-fuzz needs nightly-only flags. A nightly toolchain is used when one
# is installed or installable; a new machine fetches no toolchain, so the
# fallback is stable with RUSTC_BOOTSTRAP=1. FUZZ_TOOLCHAIN=stable forces it.
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=harness/toolchain.sh
. "$here/toolchain.sh"
fuzz=$(cd "$here/../host/fuzz" && pwd)
seconds=${FUZZ_SECONDS:-60}
target=klp_names
export PATH="$HOME/.cargo/bin:$PATH"

if ! cargo fuzz --version 2>/dev/null | grep -q " $CARGO_FUZZ_VERSION\$"; then
	echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION"
	cargo install --locked --version "$CARGO_FUZZ_VERSION" cargo-fuzz
fi

toolchain=${FUZZ_TOOLCHAIN:-nightly}
if [[ $toolchain == nightly ]] && ! rustup run nightly rustc --version >/dev/null 2>&1; then
	echo "fuzz: trying to install a nightly toolchain"
	timeout 300 rustup toolchain install nightly --profile minimal >/dev/null 2>&1 ||
		toolchain=stable
fi
if [[ $toolchain != nightly ]]; then
	echo "fuzz: using $toolchain with RUSTC_BOOTSTRAP=1"
	export RUSTC_BOOTSTRAP=1
fi

mkdir -p "$fuzz/corpus/$target" "$fuzz/target"
log=$fuzz/target/fuzz-$target.log
cd "$fuzz"
# No sanitizer: the parsers are safe Rust, where ASan finds nothing a panic
# would not, and costs several times the throughput. Release build with
# debug assertions and overflow checks (cargo-fuzz's default).
rc=0
cargo "+$toolchain" fuzz run --fuzz-dir "$fuzz" --sanitizer none "$target" \
	"corpus/$target" "seeds/$target" -- \
	-max_total_time="$seconds" -dict=klp_names.dict -max_len=1024 \
	-print_final_stats=1 2>&1 | tee "$log" || rc=$?

# The figures worth keeping: executions, speed, coverage, corpus.
done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
execs=$(sed -n "s/^stat::number_of_executed_units: *//p" "$log")
rate=$(sed -n "s/^stat::average_exec_per_sec: *//p" "$log")
if ((rc != 0)); then
	echo "fuzz: FAILED (exit $rc) after ${execs:-?} executions; input in $fuzz/artifacts/$target/"
	exit "$rc"
fi
echo "fuzz: ${execs:-?} executions at ${rate:-?}/s in ${seconds}s; ${done_line:-no DONE line}"

if [[ ${FUZZ_COVERAGE:-0} == 1 ]]; then
	# cargo-fuzz merges the profiles with the toolchain's llvm-tools, which
	# cannot be fetched here; Debian's LLVM (harness/toolchain.sh) reads them.
	if ! command -v llvm-cov-$KLP_LLVM_VERSION >/dev/null; then
		echo "fuzz: no llvm-cov-$KLP_LLVM_VERSION for coverage; run make deps"
		exit 1
	fi
	cov=coverage/$target
	rm -rf "$cov"
	cargo "+$toolchain" fuzz coverage --fuzz-dir "$fuzz" --sanitizer none "$target" \
		"corpus/$target" >"$fuzz/target/coverage-$target.log" 2>&1 || true
	llvm-profdata-$KLP_LLVM_VERSION merge -sparse "$cov"/raw/*.profraw -o "$cov/merged.profdata"
	bin=target/x86_64-unknown-linux-gnu/coverage/x86_64-unknown-linux-gnu/release/$target
	llvm-cov-$KLP_LLVM_VERSION report "$bin" -instr-profile="$cov/merged.profdata" |
		grep -E 'klp_names\.rs|names_model\.rs' |
		awk '{printf "fuzz: coverage of %s: regions %s of %s, functions %s, lines %s of %s\n", $1, $4, $2, $7, $10, $8}'
fi
