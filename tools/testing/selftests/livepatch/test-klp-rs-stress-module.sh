#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs stress: a livepatch for a module stays enabled while that module is
# loaded and unloaded 200 times (or as many as fit in 120 s on the slow debug
# kernel; at least 20). Each load must get the patch with its .klp.rela
# relocations written again (the core clears them when the module goes, so
# only rewritten ones let the patched probe show the secret this load was
# given, and where this load keeps it), and the
# object's callbacks must run once per load and once per unload, in order
# (test_klp_rs_reloc_target, test_klp_rs_stress_mod_patch). Upstream
# behaviour: it passes on the C core too.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_TARGET=test_klp_rs_reloc_target
MOD_LIVEPATCH=test_klp_rs_stress_mod_patch
CYCLES=$(stress_cycles 200)
# KASAN's kernel takes about 2.6 s a load, five times the plain one's 0.5 s.
BUDGET=$(stress_budget 400 120)
MIN_CYCLES=$((CYCLES < 20 ? CYCLES : 20))
PROBE=/sys/module/$MOD_TARGET/parameters/probe
CALLBACKS=/sys/module/$MOD_LIVEPATCH/parameters/callbacks

for m in $MOD_TARGET $MOD_LIVEPATCH; do
	[[ -e test_modules/$m.ko ]] || skip "test_modules/$m.ko was not built"
done

setup_config
trap 'teardown $MOD_LIVEPATCH $MOD_TARGET; cleanup' EXIT INT TERM HUP

function transition_done() {
	[[ "$(cat "$SYSFS_KLP_DIR/$MOD_LIVEPATCH/transition" 2>/dev/null)" == 0 ]]
}

# secret_addr() - where this load of the target keeps its secret
function secret_addr() {
	awk -v m="[$MOD_TARGET]" '$3 == "test_klp_rs_reloc_target_secret" && $4 == m { print $1 }' /proc/kallsyms
}

start_test "a patched module loaded and unloaded up to $CYCLES times"

insmod test_modules/$MOD_LIVEPATCH.ko || die "insmod $MOD_LIVEPATCH failed"
loop_until transition_done || die "the patching transition did not finish"
refcnt=$(cat /sys/module/$MOD_LIVEPATCH/refcnt)
[[ "$(cat $CALLBACKS)" == "0 0 0 0" ]] || die "callbacks ran before the target loaded: $(cat $CALLBACKS)"
addrs=()
begin=$SECONDS
for ((i = 1; i <= CYCLES && SECONDS - begin < BUDGET; i++)); do
	secret=$((i * 37 % 1000 + 1))
	insmod test_modules/$MOD_TARGET.ko secret=$secret || die "load $i: insmod failed"
	addr=$(secret_addr)
	expected="patched secret=$secret mix=$((700 + secret)) addr=$addr"
	got=$(cat $PROBE)
	[[ "$got" == "$expected" ]] || die "load $i: the probe reads '$got', expected '$expected'"
	[[ "$(cat "$SYSFS_KLP_DIR/$MOD_LIVEPATCH/$MOD_TARGET/patched")" == 1 ]] ||
		die "load $i: the target's object is not patched"
	[[ "$(cat $CALLBACKS)" == "$i $i $((i - 1)) $((i - 1))" ]] ||
		die "load $i: callbacks (pre/post patch, pre/post unpatch) counted $(cat $CALLBACKS)"
	((${#addrs[@]} < 8)) && addrs+=("$addr")
	rmmod $MOD_TARGET || die "load $i: rmmod failed"
	[[ "$(cat $CALLBACKS)" == "$i $i $i $i" ]] ||
		die "unload $i: callbacks (pre/post patch, pre/post unpatch) counted $(cat $CALLBACKS)"
done
elapsed=$((SECONDS - begin))
done_cycles=$((i - 1))
distinct=$(printf '%s\n' "${addrs[@]}" | sort -u | wc -l)
kernel_log=$(dmesg | awk -v last_dmesg="$LAST_DMESG" 'p; $0 == last_dmesg { p=1 }')
applied=$(grep -c "livepatch: applying patch '$MOD_LIVEPATCH' to loading module '$MOD_TARGET'" <<<"$kernel_log")
reverted=$(grep -c "livepatch: reverting patch '$MOD_LIVEPATCH' on unloading module '$MOD_TARGET'" <<<"$kernel_log")
echo "loads: $done_cycles of $CYCLES in ${elapsed}s; callbacks: $(cat $CALLBACKS); kernel log: $applied applied, $reverted reverted; secret at $distinct distinct addresses in the first ${#addrs[@]} loads"
((done_cycles >= MIN_CYCLES)) || die "only $done_cycles loads in ${BUDGET}s"
((applied == done_cycles && reverted == done_cycles)) ||
	die "the core logged $applied applications and $reverted reverts for $done_cycles loads"
now=$(cat /sys/module/$MOD_LIVEPATCH/refcnt)
((now == refcnt)) || die "$MOD_LIVEPATCH's refcnt is $now, was $refcnt before the loads"
disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH
expect_no_stack_dump

exit 0
