#!/usr/bin/env bash
# Rust livepatch modules that must not build (kernel::klp_patch!'s
# compile-time checks): each file of
# tools/testing/selftests/livepatch/klp_rs_compile_fail/ is built as an
# external module against the Rust core's build tree; the build must fail
# with what the file's first line ("// expect: <ERE>") says, or succeed
# for "// expect: builds" (the controls). Prints one
# "PASS|FAIL compile-fail:<name>" line per file.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${KLP_CACHE:-$HOME/.cache/klp-rs}
export PATH="$HOME/.cargo/bin:$PATH"
# shellcheck source=harness/toolchain.sh
. "$here/toolchain.sh"

srctree=$cache/rust-src
out=$cache/rust/build
cases=$repo/tools/testing/selftests/livepatch/klp_rs_compile_fail
work=$cache/rust/compile-fail

for f in "$cases"/*.rs; do
	name=$(basename "$f" .rs)
	want=$(sed -n '1s|^// expect: ||p' "$f")
	if [[ -z $want ]]; then
		echo "FAIL compile-fail:$name no '// expect:' first line"
		continue
	fi
	dir=$work/$name
	rm -rf "$dir" && mkdir -p "$dir"
	cp "$f" "$dir/"
	echo "obj-m := $name.o" >"$dir/Makefile"
	if log=$(make -C "$srctree" O="$out" LLVM=-"$KLP_LLVM_VERSION" -s M="$dir" modules 2>&1); then
		# "// expect: builds": a control, what must compile does.
		if [[ $want == builds ]]; then
			echo "PASS compile-fail:$name"
		else
			echo "FAIL compile-fail:$name built, but must not"
		fi
	elif [[ $want == builds ]]; then
		echo "FAIL compile-fail:$name does not build:"
		grep -m5 -E '^error' <<<"$log" | sed 's/^/  | /'
	else
		# Every error must be the one expected: a case that fails for
		# another reason proves nothing.
		errors=$(grep -E '^error' <<<"$log" | grep -vE 'aborting due to|could not compile')
		if [[ -n $errors ]] && ! grep -vqE -- "$want" <<<"$errors"; then
			echo "PASS compile-fail:$name"
		else
			echo "FAIL compile-fail:$name did not report only /$want/:"
			sed 's/^/  | /' <<<"${errors:-$(tail -n 5 <<<"$log")}"
		fi
	fi
done
