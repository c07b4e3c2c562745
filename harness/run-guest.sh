#!/usr/bin/env bash
# Boot a built klp-rs guest under QEMU.
#
#   KLP_IMPL=rust|c run-guest.sh check TEST...   run tests, write results
#   KLP_IMPL=rust|c run-guest.sh demo|shell
#
# Every boot has a time limit; a hung or crashed guest is killed and the tail
# of its console shown. The full console log is kept and its path printed.
# In check mode, one line per requested test is appended to $KLP_RESULTS
# ("PASS name" / "FAIL name why"); a test the guest never reported fails.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=harness/results.sh
. "$here/results.sh"
cache=${KLP_CACHE:-$HOME/.cache/klp-rs}
impl=${KLP_IMPL:-rust}
flavour=$impl
[[ ${KLP_DEBUG:-0} == 1 ]] && flavour=$impl-debug
# Another kernel of the cache by its folder's name (make check-klp-build's).
flavour=${KLP_FLAVOUR:-$flavour}
# KASAN's shadow and kmemleak's pool want more than the 1 GiB a plain guest has.
mem=1G
[[ ${KLP_DEBUG:-0} == 1 ]] && mem=2G
fdir=$cache/$flavour
mode=$1
shift
tests=("$@")

# no_boot(why) - stop before booting; in check mode every requested test
# fails with the reason, so that no caller can miss them
no_boot() {
	echo "run-guest: $1" >&2
	if [[ $mode == check ]]; then
		local t
		for t in "${tests[@]}"; do
			echo "FAIL $t${KLP_RESULT_SUFFIX:-} not booted: $1" >>"${KLP_RESULTS:-/dev/null}"
		done
	fi
	exit 2
}

bzimage=$fdir/build/arch/x86/boot/bzImage
[[ -f $bzimage ]] || no_boot "no kernel at $bzimage; build first"
initrd=$fdir/initramfs.cpio.gz
"$here/mkinitramfs.sh" "$fdir" "$initrd" || no_boot "no initramfs: mkinitramfs.sh failed"

mkdir -p "$cache/logs"
# The pid too: guests started in the same second (CI runs several) must
# not share a log.
log=${KLP_LOG:-$cache/logs/$(date +%Y%m%d-%H%M%S)-$$-$flavour-$mode.log}

# KVM only where a probe showed a guest really boots with it (it does not on
# the PVM-backed /dev/kvm of these machines); the answer is cached.
accel=(-accel tcg,thread=single -cpu max)
case ${KLP_ACCEL:-auto} in
tcg) ;;
kvm) accel=(-accel kvm -cpu host) ;;
auto)
	probe=$cache/kvm-probe
	if [[ -w /dev/kvm && ! -f $probe ]]; then
		if timeout -k 5 30 qemu-system-x86_64 -accel kvm -cpu host -m 512M -smp 1 -nographic -no-reboot \
			-kernel "$bzimage" -initrd "$initrd" -append "console=ttyS0 panic=-1 klp.mode=probe" \
			</dev/null 2>&1 | grep -q KLP-PROBE-OK; then
			echo yes >"$probe"
		else
			echo no >"$probe"
		fi
	fi
	[[ -f $probe && $(cat "$probe") == yes ]] && accel=(-accel kvm -cpu host)
	;;
esac

joined=$(IFS=,; echo "${tests[*]}")
append="console=ttyS0 panic=-1 loglevel=5 klp.mode=$mode"
[[ -n $joined ]] && append="$append klp.tests=$joined"
[[ -n ${KLP_TEST_TIMEOUT:-} ]] && append="$append klp.timeout=$KLP_TEST_TIMEOUT"
# Debug kernels log much more (lockdep, fault injection's stack dumps): a
# ring buffer the tests' and the harness's markers stay in.
[[ ${KLP_DEBUG:-0} == 1 ]] && append="$append log_buf_len=16M"
# More kernel parameters for this boot (KLP_APPEND); KLP_RESULT_SUFFIX tells
# its results from another boot's of the same test.
[[ -n ${KLP_APPEND:-} ]] && append="$append $KLP_APPEND"
# More QEMU options (KLP_QEMU_EXTRA, split on spaces): make bench adds
# -icount for the micro-benchmarks.
read -ra qemu_extra <<<"${KLP_QEMU_EXTRA:-}"
qemu=(qemu-system-x86_64 "${accel[@]}" "${qemu_extra[@]}" -m "${KLP_MEM:-$mem}" -smp "${KLP_SMP:-2}"
	-nographic -no-reboot -kernel "$bzimage" -initrd "$initrd" -append "$append")

case $mode in
check) limit=${KLP_BOOT_TIMEOUT:-$((300 + 300 * ${#tests[@]}))} ;;
shell) limit=${KLP_BOOT_TIMEOUT:-7200} ;;
*) limit=${KLP_BOOT_TIMEOUT:-300} ;;
esac
echo "run-guest: $flavour kernel, ${accel[*]}${qemu_extra[*]:+ ${qemu_extra[*]}}, limit ${limit}s; console log: $log"

if [[ $mode == shell ]]; then
	timeout -k 10 "$limit" "${qemu[@]}" 2>&1 | tee "$log"
	exit 0
fi

# Show what matters live; the whole console goes to the log.
timeout -k 10 "$limit" "${qemu[@]}" </dev/null 2>&1 | tee "$log" |
	if [[ $mode == check ]]; then
		awk '/^KLP-TAIL-BEGIN/{t=1} t{print; fflush()} /^KLP-TAIL-END/{t=0}
		     /^KLP-(BEGIN|RESULT|INIT)/{print; fflush()}'
	elif [[ $mode == demo ]]; then
		# Only the demo's transcript: no firmware banners, no kernel log.
		awk '/^KLP-DEMO-BEGIN/{d=1; next} /^KLP-DEMO-END/{d=0; next}
		     d && !/^\[ *[0-9.]+\]/ && !/^KLP-/ {sub(/\r$/, ""); print; fflush()}'
	else
		grep --line-buffered -v '^\[ *[0-9.]*\]'
	fi
qemu_rc=${PIPESTATUS[0]}
tr -d '\r' <"$log" >"$log.tmp" && mv "$log.tmp" "$log"

if ! guest_finished "$log"; then
	if [[ $qemu_rc == 124 || $qemu_rc == 137 ]]; then
		echo "run-guest: guest killed after ${limit}s; last console lines:"
	else
		echo "run-guest: guest ended without finishing (qemu exit $qemu_rc); last console lines:"
	fi
	tail -n 40 "$log" | sed 's/^/  | /'
	guest_ok=0
else
	guest_ok=1
fi

if [[ $mode == check ]]; then
	collect_results "$log" "${KLP_RESULT_SUFFIX:-}" "${tests[@]}" >>"${KLP_RESULTS:-/dev/null}"
	echo "run-guest: console log: $log"
fi

if [[ $mode == demo ]]; then
	echo "run-guest: console log: $log"
	# The C sample always; the Rust one where the kernel has it (the Rust core).
	samples=(livepatch_sample)
	[[ $impl == rust ]] && samples+=(rust_livepatch_sample)
	for s in "${samples[@]}"; do
		before=$(sed -n "s/^KLP-DEMO $s cmdline-before: //p" "$log")
		patched=$(sed -n "s/^KLP-DEMO $s cmdline-patched: //p" "$log")
		after=$(sed -n "s/^KLP-DEMO $s cmdline-after: //p" "$log")
		if [[ $patched == "this has been live patched" && -n $before && $after == "$before" ]]; then
			echo "run-guest: $s: /proc/cmdline changed to the sample's text and back"
		else
			echo "run-guest: $s: demo did not show the expected change"
			exit 1
		fi
	done
fi
((guest_ok)) || exit 1
