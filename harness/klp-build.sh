#!/usr/bin/env bash
# make check-klp-build: a livepatch module made by the kernel's own klp-build
# (scripts/livepatch/klp-build, unchanged) from a source patch, loaded on
# klp-rs in the guest. Ends with "N passed, N failed".
#
# klp-build wants an in-tree build (no O=) of the kernel the module is for,
# built with function sections, and builds it twice itself (a clean original
# build, then the patched one). So this kernel has its own tree and folder,
# $KLP_CACHE/klp-build/: src/ (pristine 7.3 + this repository, as for
# make check), and build, srctree, ext for run-guest.sh (KLP_FLAVOUR).
# Its configuration is make check's kernel's. The guest boots the original
# kernel, rebuilt from the reverted tree once klp-build is done.
#
# KLP_IMPL=c does the same on the C core (pristine tree, in klp-build-c/):
# the baseline the same guest test must pass on.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${KLP_CACHE:-$HOME/.cache/klp-rs}
jobs=${KLP_JOBS:-$(nproc)}
impl=${KLP_IMPL:-rust}
case $impl in rust) flavour=klp-build ;; c) flavour=klp-build-c ;; *) echo "klp-build: KLP_IMPL must be rust or c" >&2; exit 2 ;; esac
export PATH="$HOME/.cargo/bin:$PATH"
# shellcheck source=harness/toolchain.sh
. "$here/toolchain.sh"
# shellcheck source=harness/results.sh
. "$here/results.sh"

fdir=$cache/$flavour
src=$fdir/src
ext=$fdir/ext
patch=$repo/tools/testing/selftests/livepatch/klp_build/cmdline.patch
module=livepatch_klp_rs_cmdline
guest_test=klp-build-klp-rs-cmdline.sh
mkdir -p "$fdir" "$ext"
results=$(mktemp "${TMPDIR:-/tmp}/klp-results.XXXXXX")
trap 'rm -f "$results"' EXIT
start=$SECONDS

summary() {
	print_summary "$results" "$flavour" $((SECONDS - start)) "$cache/last-summary-$flavour"
}

# step(name, log, command...) - run a step with its output in log; on
# failure, record it, show the log's tail, and stop with the summary
step() {
	local name=$1 log=$2 t0=$SECONDS
	shift 2
	echo "== $name (log: $log)"
	if ! "$@" >"$log" 2>&1; then
		echo "$name failed; last lines of $log:"
		tail -n 40 "$log" | sed 's/^/  | /'
		echo "FAIL $name (log: $log)" >>"$results"
		summary
		exit 1
	fi
	echo "   $((SECONDS - t0))s"
}

step deps "$fdir/deps.log" "$here/deps.sh" klp-build

# make check's kernel: its configuration, and the guest's helpers (klpctl
# and the like) from its ext folder. Incremental when it is built already.
step kernel-build "$fdir/kernel-build.log" env KLP_IMPL="$impl" KLP_DEBUG=0 "$here/build.sh"

tree() {
	local pristine
	pristine=$("$here/fetch-tree.sh") || return 1
	if [[ $impl == rust ]]; then
		"$here/overlay.sh" "$pristine" "$src" || return 1
	else
		# A copy: make check's C kernel builds out of the pristine tree
		# (O=), which an in-tree build would make unusable.
		rsync -a "$pristine/" "$src/" || return 1
	fi
	# A klp-build killed half-way leaves its patch applied and its stamp in
	# scripts/setlocalversion: the files it was given go back to pristine
	# (the list is kept from run to run; the patch may have changed since).
	local f
	for f in scripts/setlocalversion $(cat "$fdir/patched-files" 2>/dev/null); do
		cmp -s "$pristine/$f" "$src/$f" || cp "$pristine/$f" "$src/$f" || return 1
	done
	sed -n 's|^+++ [^/]*/\([^[:space:]]*\).*|\1|p' "$patch" >"$fdir/patched-files"
	cp "$cache/$impl/build/.config" "$src/.config" || return 1
	make -C "$src" LLVM=-"$KLP_LLVM_VERSION" -s olddefconfig || return 1
	grep -qx CONFIG_KLP_BUILD=y "$src/.config" || { echo "CONFIG_KLP_BUILD is not set"; return 1; }
}
step klp-build-tree "$fdir/tree.log" tree

# klp-build runs from the tree's root; its makes read LLVM from the
# environment. The module's name is the output file's.
run_klp_build() {
	rm -f "$ext/$module.ko"
	(cd "$src" && LLVM=-"$KLP_LLVM_VERSION" ./scripts/livepatch/klp-build -j"$jobs" \
		-o "$ext/$module.ko" "$patch") || return 1
	[[ -f $ext/$module.ko ]] || { echo "klp-build made no $module.ko"; return 1; }
}
t0=$SECONDS
step klp-build "$fdir/klp-build.log" run_klp_build
klp_build_seconds=$((SECONDS - t0))

# The kernel the module is for: the original tree (klp-build reverted the
# patch), with the flags klp-build built it with, so only what the patch
# touched is compiled again.
original_kernel() {
	make -C "$src" LLVM=-"$KLP_LLVM_VERSION" -j"$jobs" -s \
		KCFLAGS="-ffunction-sections -fdata-sections" KLP_SYMIDS=1 bzImage || return 1
	ln -sfn "$src" "$fdir/build"
	echo "$src" >"$fdir/srctree"
	# The guest's helpers, not make check's modules (they are for its kernel).
	find "$cache/$impl/ext" -maxdepth 1 -type f ! -name '*.ko' -exec cp {} "$ext/" \;
}
step original-kernel "$fdir/original-kernel.log" original_kernel
echo "PASS klp-build ($klp_build_seconds s: $(grep -c '^' "$fdir/klp-build.log") log lines)" >>"$results"

echo "== guest: $guest_test"
KLP_FLAVOUR=$flavour KLP_RESULTS=$results "$here/run-guest.sh" check "$guest_test"
summary
