#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs: every allocation the livepatch core makes, failed one at a time.
#
# For each operation below, run number n arms /proc/<tid>/fail-nth with n
# (klp_rs_failnth does it, then makes the one system call), so that the
# n-th allocation of that call which has a frame of the livepatch core on
# its stack fails (failslab and fail_page_alloc, with the stack-trace
# filter set to the core's text); n grows until a run ends before its n-th
# such allocation. Each run that failed one must either fail the operation
# with an error and leave everything as it was (/sys/kernel/livepatch,
# ftrace's enabled_functions, /proc/modules), or succeed in full; the run
# after the last point succeeds. The guest's kmemleak scan after the test
# finds what a failure path leaked.
#
# The operations: enabling a patch of vmlinux (klp_enable_patch); an
# atomic replace (nops); a module coming while a patch of one of its
# functions, with .klp.rela relocations, is enabled (klp_module_coming);
# disabling a patch; the
# klp_shadow_* calls of a module's init. A failure injected into an
# allocation the kernel may do without (a uevent, kmemleak's own records)
# lets the operation succeed: that is counted as absorbed.
#
# Needs a kernel with FAULT_INJECTION (the debug kernel); skips elsewhere.
# Upstream behaviour: passes on the C core too.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

FAILNTH=./klp_rs_failnth
DBG=/sys/kernel/debug
CAPS=(failslab fail_page_alloc)
# A bound against an operation that would never run out of points.
MAX_POINTS=${KLP_FI_MAX_POINTS:-400}

MOD_PATCH=test_klp_livepatch
MOD_REPLACE=test_klp_atomic_replace
# A patch of a module's function, with .klp.rela relocations for it.
MOD_DEMO=test_klp_rs_reloc_mod_patch
MOD_TARGET=test_klp_rs_reloc_target
MOD_SHADOW=test_klp_rs_shadow_api

[[ -w /proc/self/fail-nth && -d $DBG/failslab && -d $DBG/fail_page_alloc ]] ||
	skip "this kernel has no fault injection (CONFIG_FAULT_INJECTION, FAILSLAB, FAIL_PAGE_ALLOC)"
[[ -w $DBG/failslab/require-start ]] ||
	skip "this kernel has no stack-trace filter for fault injection"
[[ -x $FAILNTH && -s klp-core-functions ]] || skip "klp_rs_failnth or klp-core-functions missing"
for m in $MOD_PATCH $MOD_REPLACE $MOD_DEMO $MOD_TARGET $MOD_SHADOW; do
	[[ -e test_modules/$m.ko ]] || skip "test_modules/$m.ko was not built"
done

# core_text() - "<start> <end>" of the livepatch core's text in hex: the
# largest run of its functions (names kallsyms holds once only) with no gap
# over 64 KiB between them, from its first function to the symbol after its
# last. (The odd function the compiler put in another section, such as a
# cold path, stays outside.)
function core_text() {
	awk '
		NR == FNR { want[$1] = 1; next }
		$2 ~ /^[tT]$/ && ($3 in want) && !$4 { n[$3]++; addr[$3] = $1 }
		END { for (s in n) if (n[s] == 1) print addr[s] }
	' klp-core-functions /proc/kallsyms | sort >/tmp/klp-core-addrs
	local lo hi end
	read -r lo hi < <(awk '
		{ a = strtonum("0x" $1) }
		NR == 1 || a - prev > 65536 { start = $1; len = 0 }
		{ len++; prev = a; if (len > best) { best = len; lo = start; hi = $1 } }
		END { print lo, hi }
	' /tmp/klp-core-addrs)
	[[ -n $hi ]] || return 1
	awk -v lo="$lo" -v hi="$hi" '$1 >= lo && $1 <= hi' /tmp/klp-core-addrs >/tmp/klp-core-run
	end=$(awk -v hi="$hi" '$1 > hi { print $1 }' /proc/kallsyms | sort | head -n1)
	echo "$lo ${end:-$hi}"
}

read -r TEXT_LO TEXT_END < <(core_text) || die "cannot find the livepatch core's functions in kallsyms"
[[ -n $TEXT_END ]] || die "cannot find the livepatch core's functions in kallsyms"
NFUNCS=$(wc -l </tmp/klp-core-run)
INSIDE=$(awk -v lo="$TEXT_LO" -v end="$TEXT_END" '$2 ~ /^[tT]$/ && !$4 && $1 >= lo && $1 < end' /proc/kallsyms |
	wc -l)
echo "core text: 0x$TEXT_LO-0x$TEXT_END, $NFUNCS of its $(wc -l <klp-core-functions) functions, $((INSIDE - NFUNCS)) other symbols inside"
# Others inside would have their allocations failed too, and hide the core's.
((INSIDE - NFUNCS < 10)) || die "the core's text is not one run: $((INSIDE - NFUNCS)) other symbols inside"

SAVED=()
function arm_caps() {
	local cap f
	for cap in "${CAPS[@]}"; do
		for f in ignore-gfp-wait require-start require-end stacktrace-depth verbose; do
			SAVED+=("$(cat "$DBG/$cap/$f") $DBG/$cap/$f")
		done
		echo N >"$DBG/$cap/ignore-gfp-wait"
		# In hex: kernel addresses are past bash's signed 64-bit range.
		echo "0x$TEXT_LO" >"$DBG/$cap/require-start" &&
			echo "0x$TEXT_END" >"$DBG/$cap/require-end" ||
			die "$cap: the stack-trace filter does not take 0x$TEXT_LO-0x$TEXT_END"
		echo 32 >"$DBG/$cap/stacktrace-depth"
		# A stack dump per failure: where it was (sites below).
		echo 2 >"$DBG/$cap/verbose"
		[[ $(cat "$DBG/$cap/require-start") != 0 ]] || die "$cap: require-start reads 0"
	done
	# The dumps go to the log, not to the slow serial console.
	SAVED+=("$(cut -f1 /proc/sys/kernel/printk) /proc/sys/kernel/printk")
	echo 1 >/proc/sys/kernel/printk
	SAVED+=("$(cat $DBG/fail_page_alloc/min-order) $DBG/fail_page_alloc/min-order"
		"$(cat $DBG/fail_page_alloc/ignore-gfp-highmem) $DBG/fail_page_alloc/ignore-gfp-highmem")
	echo 0 >$DBG/fail_page_alloc/min-order
	echo N >$DBG/fail_page_alloc/ignore-gfp-highmem
}

function restore_caps() {
	local s
	for s in "${SAVED[@]}"; do
		echo "${s%% *}" >"${s#* }"
	done
	SAVED=()
}

setup_config
trap 'restore_caps; teardown $MOD_REPLACE $MOD_PATCH $MOD_DEMO $MOD_TARGET $MOD_SHADOW; cleanup' EXIT INT TERM HUP

# snapshot() - what a failed operation must leave as it was, into $snap
# (bash builtins only: the loop runs hundreds of times on a slow kernel)
function snapshot() {
	local f lines
	snap=
	shopt -s globstar nullglob
	for f in $SYSFS_KLP_DIR/**; do
		snap+="$f"$'\n'
		if [[ $f == */enabled || $f == */transition || $f == */patched || $f == */stack_order ]]; then
			read -r lines <"$f"
			snap+="  $lines"$'\n'
		fi
	done
	shopt -u globstar nullglob
	for f in /sys/kernel/tracing/enabled_functions /proc/modules; do
		mapfile -t lines <"$f"
		snap+=$(printf '%s\n' "${lines[@]}")$'\n'
	done
}

function transition_done() {
	[[ "$(cat "$SYSFS_KLP_DIR/$1/transition" 2>/dev/null)" == 0 ]]
}

function gone() {
	[[ ! -e "$SYSFS_KLP_DIR/$1" ]]
}

# fault_sites() - where the injected failures were, one line each: the two
# innermost frames of the core in each stack dump since the test began
# ("function+offset/size", the caller's after a comma), so that a helper of
# the core that allocates for several callers counts once per caller
function fault_sites() {
	dmesg | awk -v m="$LAST_DMESG" 'p; $0 == m { p = 1 }' |
		sed -e 's/^\[[ 0-9.]*\] //' -e 's/^\[[ ]*[CT][0-9]*\] //' |
		awk '
			function flush() { if (dump) print site == "" ? "unknown" : site; dump = 0 }
			NR == FNR { core[$1] = 1; next }
			/FAULT_INJECTION: forcing a failure/ { flush(); dump = 1; look = 2; site = ""; next }
			look && /^ *[^ ?][^ ]*\+0x/ {
				name = $1; sub(/\+.*/, "", name)
				if (name in core) { site = site (site == "" ? "" : ",") $1; look-- }
			}
			END { flush() }
		' klp-core-functions -
}

TOTAL_POINTS=0
TOTAL_ERRORS=0
TOTAL_TAKEN=0

# inject(name, setup, undo, op...) - for n = 1, 2, ...: SETUP (a function
# putting the state the operation starts from in place), the operation run
# by klp_rs_failnth with fail-nth n, then: if the fault was injected and
# the operation failed, the state must equal the one before it; if it
# succeeded, UNDO (a function) takes it back. Ends after the first run that
# reached no n-th point, which must succeed.
function inject() {
	local name=$1 setup=$2 undo=$3 n out before after points=0 errors=0 taken=0
	shift 3
	# KLP_FI_ONLY=<text>: only the operations whose name has it (debugging).
	[[ $name == *"${KLP_FI_ONLY:-}"* ]] || return 0
	for ((n = 1; n <= MAX_POINTS; n++)); do
		$setup
		snapshot
		before=$snap
		out=$($FAILNTH $n "$@") || die "$name: klp_rs_failnth failed: $out"
		echo "$name: run $n: $out" >>/tmp/klp-fault-runs
		if [[ $out == "injected=0 ret=0" ]]; then
			$undo
			break
		fi
		[[ $out == injected=1* ]] || die "$name: run $n injected nothing and failed: $out"
		points=$((points + 1))
		if [[ $out == "injected=1 ret=0" ]]; then
			# The failure was absorbed (a fallback): all must work.
			taken=$((taken + 1))
			$undo
		else
			# A failed allocation is ENOMEM to the caller, unless the
			# operation's own code words it otherwise (EXPECT_ERR).
			[[ $out == "injected=1 ret=${EXPECT_ERR:-ENOMEM}" ]] ||
				die "$name: failing allocation $n gave $out, expected ret=${EXPECT_ERR:-ENOMEM}"
			errors=$((errors + 1))
			snapshot
			after=$snap
			[[ "$before" == "$after" ]] ||
				die "$name: failing allocation $n ($out) left the system changed:$(diff <(echo "$before") <(echo "$after"))"
		fi
	done
	((n <= MAX_POINTS)) || die "$name: still failing allocations after $MAX_POINTS runs"
	echo "$name: $points allocation(s) failed one at a time: $errors refused the operation, $taken absorbed; run $n succeeded"
	((points > 0 || ${MAY_HIT_NONE:-0})) || die "$name: no allocation of the livepatch core was hit"
	TOTAL_POINTS=$((TOTAL_POINTS + points))
	TOTAL_ERRORS=$((TOTAL_ERRORS + errors))
	TOTAL_TAKEN=$((TOTAL_TAKEN + taken))
}

# The states the operations start from, and their undoing.
function nothing() { :; }

function unload_patch() { # name
	if [[ -e $SYSFS_KLP_DIR/$1 ]]; then
		loop_until "transition_done $1" || die "$1: the transition did not finish"
		echo 0 >"$SYSFS_KLP_DIR/$1/enabled"
		loop_until "gone $1" || die "$1: the unpatching transition did not finish"
	fi
	loop_until "[[ \$(cat /sys/module/$1/refcnt) == 0 ]]" || die "$1: refcnt stays up"
	rmmod "$1" || die "rmmod $1 failed"
}

function undo_patch() { unload_patch $MOD_PATCH; }
function undo_demo() { unload_patch $MOD_DEMO; }

function patch_loaded() {
	[[ -e $SYSFS_KLP_DIR/$MOD_PATCH ]] && return
	insmod test_modules/$MOD_PATCH.ko || die "insmod $MOD_PATCH failed"
	loop_until "transition_done $MOD_PATCH" || die "$MOD_PATCH: the transition did not finish"
}

function undo_replace() {
	# The replaced patch went; its module stays until removed.
	loop_until "gone $MOD_PATCH" || die "$MOD_PATCH was not replaced"
	unload_patch $MOD_REPLACE
	loop_until "[[ \$(cat /sys/module/$MOD_PATCH/refcnt) == 0 ]]" || die "$MOD_PATCH: refcnt stays up"
	rmmod $MOD_PATCH || die "rmmod $MOD_PATCH failed"
}

function demo_loaded() {
	[[ -e $SYSFS_KLP_DIR/$MOD_DEMO ]] && return
	insmod test_modules/$MOD_DEMO.ko || die "insmod $MOD_DEMO failed"
	loop_until "transition_done $MOD_DEMO" || die "$MOD_DEMO: the transition did not finish"
}

function undo_target() { rmmod $MOD_TARGET || die "rmmod $MOD_TARGET failed"; }

function undo_disable() {
	loop_until "gone $MOD_PATCH" || die "$MOD_PATCH: the unpatching transition did not finish"
	loop_until "[[ \$(cat /sys/module/$MOD_PATCH/refcnt) == 0 ]]" || die "$MOD_PATCH: refcnt stays up"
	rmmod $MOD_PATCH || die "rmmod $MOD_PATCH failed"
}

function undo_shadow() { rmmod $MOD_SHADOW || die "rmmod $MOD_SHADOW failed"; }

start_test "every allocation of the livepatch core failed, one at a time"

arm_caps

inject "enable a vmlinux patch" nothing undo_patch \
	insmod test_modules/$MOD_PATCH.ko
inject "atomic replace" patch_loaded undo_replace \
	insmod test_modules/$MOD_REPLACE.ko replace=1
inject "a module coming for an enabled patch" demo_loaded undo_target \
	insmod test_modules/$MOD_TARGET.ko
undo_demo
MAY_HIT_NONE=1 inject "disable a patch" patch_loaded undo_disable \
	write $SYSFS_KLP_DIR/$MOD_PATCH/enabled 0
# A run whose injection refused the write leaves the patch enabled.
[[ -e /sys/module/$MOD_PATCH ]] && unload_patch $MOD_PATCH
# The module's init answers EINVAL to whatever did not go as it expects
# (test_klp_rs_shadow_api.c), a failed allocation included.
EXPECT_ERR=EINVAL inject "klp_shadow_* in a module's init" nothing undo_shadow \
	insmod test_modules/$MOD_SHADOW.ko

restore_caps

fault_sites >/tmp/klp-fault-sites
traced=$(grep -c . /tmp/klp-fault-sites)
sites=$(sort -u /tmp/klp-fault-sites | grep -cvx unknown)
unknown=$(grep -cx unknown /tmp/klp-fault-sites)
# (Allocations made with __GFP_NOWARN, such as kmemleak's own records, fail
# without a dump.)
((traced > 0 && traced <= TOTAL_POINTS)) || die "$TOTAL_POINTS failures injected, $traced stack dumps in the log"

echo "fault injection: $TOTAL_POINTS allocation failures injected ($TOTAL_ERRORS refused an operation, $TOTAL_TAKEN absorbed); $traced dumped a stack, at $sites distinct call sites in the core ($unknown outside it)"
((sites > 0)) || die "no failure was traced to a call site in the core"

exit 0
