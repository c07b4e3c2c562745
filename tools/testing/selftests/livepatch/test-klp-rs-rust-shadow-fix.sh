#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs: the shadow-variable fix pair, in Rust (samples/livepatch/
# rust_livepatch_shadow_fix1.rs, fix2.rs), on upstream's C
# livepatch-shadow-mod.ko: fix1 stops the leak with a typed shadow variable
# per dummy, fix2 adds a check counter and frees fix1's variables; dummies
# from before fix1 are reported leaked. On a kernel with kmemleak, the ints
# the C module leaked before fix1 came are the only leaks it finds.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_TARGET=livepatch_shadow_mod
MOD_FIX1=rust_livepatch_shadow_fix1
MOD_FIX2=rust_livepatch_shadow_fix2

for m in $MOD_TARGET $MOD_FIX1 $MOD_FIX2; do
	[[ -e test_modules/$m.ko ]] || skip "test_modules/$m.ko was not built"
done

setup_config

KMEMLEAK=/sys/kernel/debug/kmemleak

# kmemleak_objects() - with kmemleak: every object it finds unreferenced now
# (after the two scans that report one whose contents held still), one line
# each: "module" if a frame of its allocation is in $MOD_TARGET, else
# "other"; then forgets them (they were judged here). Nothing without it.
# Task stacks are not scanned meanwhile: the module's worker leaves the last
# leaked pointer in a stale slot of its stack, which would hide that leak for
# a while, to be found by a later test's scan.
function kmemleak_objects() {
	[[ -w $KMEMLEAK ]] || return 0
	echo stack=off >$KMEMLEAK
	echo scan >$KMEMLEAK
	echo scan >$KMEMLEAK
	echo stack=on >$KMEMLEAK
	awk -v mod="[$MOD_TARGET]" '
		/^unreferenced object/ { if (seen) print (in_mod ? "module" : "other"); seen = 1; in_mod = 0 }
		index($0, mod) { in_mod = 1 }
		END { if (seen) print (in_mod ? "module" : "other") }
	' $KMEMLEAK
	cat $KMEMLEAK >/tmp/klp-rs-kmemleak.txt
	echo clear >$KMEMLEAK
}

# How many lines since the test began contain the text.
function count {
	dmesg | awk -v last_dmesg="$LAST_DMESG" 'p; $0 == last_dmesg { p=1 }' | grep -c -- "$1"
}

start_test "the shadow-variable fixes of livepatch-shadow-mod, in Rust"

load_mod $MOD_TARGET
# Dummies allocated unpatched: their leaks are lost.
sleep 3
load_lp $MOD_FIX1
# A dummy lives 12 s; the module frees expired ones every 3 s.
sleep 16
load_lp $MOD_FIX2
sleep 7
# While the module is loaded, kmemleak's backtraces name it. Its leaks from
# before fix1 are old enough by now to be reported.
leaks=$(kmemleak_objects)
# The module goes first, while the fixes still free its dummies' leaks (and
# it allocates no more unpatched ones).
unload_mod $MOD_TARGET
disable_lp $MOD_FIX2
unload_lp $MOD_FIX2
disable_lp $MOD_FIX1
unload_lp $MOD_FIX1

# Every leak fix1 kept is freed exactly once: by fix1's dummy_free(), by
# fix2's, or by fix1's exit (the dummies still alive).
allocated=$(count "$MOD_FIX1: dummy_alloc: dummy expires")
failed=$(count "failed to allocate shadow variable")
leaked=$(count "$MOD_FIX1: dummy_free: dummy leaked!")
prevented1=$(count "$MOD_FIX1: dummy_leak_dtor: prevented leak")
prevented2=$(count "$MOD_FIX2: dummy_leak_dtor: prevented leak")
counted=$(count "$MOD_FIX2: dummy_free: dummy check counter = [1-9]")
echo "allocated by fix1: $allocated, leaked before fix1: $leaked, leaks freed by fix1: $prevented1, by fix2: $prevented2, dummies counted by fix2: $counted"
((allocated >= 1 && failed == 0)) || fail "fix1 allocated $allocated dummies, $failed shadow variables failed"
((leaked >= 1)) || fail "no dummy from before fix1 was reported leaked"
((prevented1 + prevented2 == allocated)) ||
	fail "$allocated leaks kept, $((prevented1 + prevented2)) freed"
((prevented2 >= 1)) || fail "fix2 freed none of fix1's leaks"
((counted >= 1)) || fail "fix2 counted no check"
if [[ -w $KMEMLEAK ]]; then
	from_module=$(grep -c '^module$' <<<"$leaks")
	other=$(grep -c '^other$' <<<"$leaks")
	echo "kmemleak: $from_module objects leaked by $MOD_TARGET's unpatched dummy_alloc(), $other others"
	((other == 0)) || fail "kmemleak found leaks not from $MOD_TARGET:\n$(cat /tmp/klp-rs-kmemleak.txt)"
	# One int per dummy allocated unpatched, each reported leaked when freed.
	((from_module == leaked)) ||
		fail "kmemleak found $from_module leaks of $MOD_TARGET, the module reported $leaked:\n$(cat /tmp/klp-rs-kmemleak.txt)"
fi
expect_no_stack_dump

exit 0
