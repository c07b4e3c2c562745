#!/usr/bin/env bash
# Build a klp-rs guest kernel, its modules and the test modules.
#
#   KLP_IMPL=rust|c  KLP_DEBUG=0|1  harness/build.sh
#
# rust: pristine 7.3 + this repository overlaid (harness/overlay.sh)
# c:    the untouched pristine tree, the baseline for every comparison
# Everything lands under $KLP_CACHE/<impl>[-debug]/, printed at the end.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${KLP_CACHE:-$HOME/.cache/klp-rs}
impl=${KLP_IMPL:-rust}
debug=${KLP_DEBUG:-0}
jobs=${KLP_JOBS:-$(nproc)}
export PATH="$HOME/.cargo/bin:$PATH"
# shellcheck source=harness/toolchain.sh
. "$here/toolchain.sh"

case $impl in rust | c) ;; *) echo "build: KLP_IMPL must be rust or c, not '$impl'" >&2; exit 2 ;; esac
flavour=$impl
fragments=("$here/config/base.config")
# klp-rs's own options exist only in the overlaid tree.
[[ $impl == rust ]] && fragments+=("$here/config/rust.config")
if [[ $debug == 1 ]]; then
	flavour=$impl-debug
	fragments+=("$here/config/debug.config")
fi

pristine=$("$here/fetch-tree.sh")
if [[ $impl == rust ]]; then
	srctree=$cache/rust-src
	"$here/overlay.sh" "$pristine" "$srctree"
else
	srctree=$pristine
fi
out=$cache/$flavour/build
ext=$cache/$flavour/ext
mkdir -p "$out" "$ext"
kmake=(make -C "$srctree" O="$out" LLVM=-"$KLP_LLVM_VERSION" -j"$jobs" -s)

# Configuration: regenerate only when a fragment changed, so the build stays
# incremental; then insist that every option asked for is really set.
want=$(cat "${fragments[@]}" | sha256sum | cut -d' ' -f1)
if [[ ! -f $out/.config || "$(cat "$out/.klp-config-hash" 2>/dev/null)" != "$want" ]]; then
	echo "build: configuring $flavour" >&2
	"${kmake[@]}" tinyconfig >/dev/null
	"$srctree/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "${fragments[@]}" >/dev/null
	"${kmake[@]}" olddefconfig >/dev/null
	echo "$want" >"$out/.klp-config-hash"
fi
dropped=()
while read -r line; do
	case $line in
	CONFIG_*=*)
		opt=${line%%=*}
		grep -qxF "$line" "$out/.config" || dropped+=("$line (have: $(grep -E "^(# )?$opt[= ]" "$out/.config" || echo unset))")
		;;
	"# CONFIG_"*" is not set")
		opt=${line#\# }
		opt=${opt%% *}
		grep -qE "^$opt=" "$out/.config" && dropped+=("$line (have: $(grep -E "^$opt=" "$out/.config"))")
		;;
	esac
done < <(cat "${fragments[@]}")
if ((${#dropped[@]})); then
	rm -f "$out/.klp-config-hash"
	printf 'build: configuration option not as asked:\n' >&2
	printf '  %s\n' "${dropped[@]}" >&2
	exit 1
fi

echo "build: kernel ($flavour) in $out" >&2
clippy=()
[[ $impl == rust && ${KLP_CLIPPY:-1} == 1 ]] && clippy=(CLIPPY=1)
"${kmake[@]}" "${clippy[@]}" bzImage modules 2>&1 | tee "$out/.klp-build-output"
make_rc=${PIPESTATUS[0]}
# What this repository adds to the kernel crate must be as warning-free as
# the core (-Dwarnings there); the kernel crate has no such flag, so read the
# build's warnings, also when a later step failed. On a hit the crate's
# object goes, so that the next build compiles it again and reports it again.
ours=$(cd "$repo" && find rust -name '*.rs' 2>/dev/null | sed 's/[.]/[.]/g' | paste -sd'|')
if [[ -n $ours ]] && grep -qE -- "--> .*/($ours):" "$out/.klp-build-output"; then
	rm -f "$out/rust/kernel.o"
	echo "build: warnings in the kernel crate's additions (see above)" >&2
	exit 1
fi

[[ $make_rc -eq 0 ]] || exit 1
# A symbol kallsyms cannot take vanishes from stack traces and the tracer.
# (Except in upstream's generated doctests, where a closure of the xarray
# example is 648 bytes long: test code, never traced or patched.)
if grep "too long for kallsyms" "$out/.klp-build-output" | grep -qv 'doctests_kernel_generated'; then
	echo "build: a symbol is too long for kallsyms (see above)" >&2
	exit 1
fi

# External modules: the upstream selftest modules (copied from the tree, so
# the tree itself stays clean) and the project's own.
build_ext() { # name source-dir
	local dst=$ext/$1
	mkdir -p "$dst"
	rsync -rc --delete --exclude='*.o' --exclude='*.ko' --exclude='*.mod*' --exclude='.*' \
		--exclude=Module.symvers --exclude=modules.order --exclude='klp_rs_many_*.c' \
		"$2/" "$dst/"
	# Generated sources (rewritten only when their text changes).
	if [[ -x $dst/gen_klp_rs_many.sh ]]; then
		"$dst/gen_klp_rs_many.sh" "$dst"
	fi
	"${kmake[@]}" M="$dst" modules
}
build_ext test_modules "$srctree/tools/testing/selftests/livepatch/test_modules"
if [[ -d $repo/tools/testing/selftests/livepatch/klp_rs_modules ]]; then
	build_ext klp_rs_modules "$repo/tools/testing/selftests/livepatch/klp_rs_modules"
	# Livepatch relocations: host/klp-convert rewrites the modules that
	# klp-convert.list names, with the options given there (a module it
	# converted already is left alone).
	convert_list=$ext/klp_rs_modules/klp-convert.list
	if [[ -f $convert_list ]]; then
		(cd "$repo" && cargo build --release --offline --quiet -p klp-convert)
		klp_convert=${CARGO_TARGET_DIR:-$repo/target}/release/klp-convert
		while read -r mod opts; do
			[[ -z $mod || $mod == '#'* ]] && continue
			# shellcheck disable=SC2086 # the options are separate words
			"$klp_convert" $opts "$ext/klp_rs_modules/$mod.ko"
		done <"$convert_list"
	fi
	# A build of test_klp_rs_reloc_target that lacks the function
	# test_klp_rs_reloc_mod_patch patches (the same module with that symbol
	# renamed), for test-klp-rs-reloc-strict.sh.
	target=$ext/klp_rs_modules/test_klp_rs_reloc_target
	if [[ ! -f ${target}_noshow.ko || $target.ko -nt ${target}_noshow.ko ]]; then
		"llvm-objcopy-$KLP_LLVM_VERSION" \
			--redefine-sym test_klp_rs_reloc_target_show=test_klp_rs_reloc_target_shov \
			"$target.ko" "${target}_noshow.ko"
	fi
fi

# User-space helper of test-syscall.sh, static for the initramfs.
getpid_src=$srctree/tools/testing/selftests/livepatch/test_klp-call_getpid.c
if [[ ! -x $ext/test_klp-call_getpid || $getpid_src -nt $ext/test_klp-call_getpid ]]; then
	gcc -O2 -static -o "$ext/test_klp-call_getpid" "$getpid_src"
fi

# Fault-injection helper of test-klp-rs-fault-injection.sh, static too.
failnth_src=$repo/tools/testing/selftests/livepatch/klp_rs_failnth.c
if [[ ! -x $ext/klp_rs_failnth || $failnth_src -nt $ext/klp_rs_failnth ]]; then
	gcc -O2 -Wall -static -o "$ext/klp_rs_failnth" "$failnth_src"
fi
# The fork-and-exit helper of test-klp-rs-stress-fork.sh, static too.
forker_src=$repo/tools/testing/selftests/livepatch/klp_rs_forker.c
if [[ ! -x $ext/klp_rs_forker || $forker_src -nt $ext/klp_rs_forker ]]; then
	gcc -O2 -Wall -static -pthread -o "$ext/klp_rs_forker" "$forker_src"
fi
# klpctl, static (glibc's static libraries: no musl target to install),
# for the guest's /bin.
(cd "$repo" && CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
	cargo build --release --offline --quiet --locked -p klpctl --target x86_64-unknown-linux-gnu)
cp "${CARGO_TARGET_DIR:-$repo/target}/x86_64-unknown-linux-gnu/release/klpctl" "$ext/klpctl"
# The livepatch core's functions (either core's), whose addresses the same
# test reads from kallsyms to fail only allocations the core asks for.
"llvm-nm-$KLP_LLVM_VERSION" --defined-only "$out/kernel/livepatch/built-in.a" |
	awk '$2 ~ /^[tT]$/ { print $3 }' | sort -u >"$ext/klp-core-functions"

# The kpatch tool for the guest image, fetched once here, in the build,
# rather than by the first guests (CI starts two at once).
"$here/fetch-kpatch.sh" >/dev/null
echo "$srctree" >"$cache/$flavour/srctree"
echo "build: done: $out/arch/x86/boot/bzImage" >&2
