#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs: the shadow-variable fix pair, in Rust (samples/livepatch/
# rust_livepatch_shadow_fix1.rs, fix2.rs), on upstream's C
# livepatch-shadow-mod.ko: fix1 stops the leak with a typed shadow variable
# per dummy, fix2 adds a check counter and frees fix1's variables; dummies
# from before fix1 are reported leaked. The ints the C module leaks before
# fix1 comes are declared to the harness, so that on a kernel with kmemleak
# any other leak fails the test.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_TARGET=livepatch_shadow_mod
MOD_FIX1=rust_livepatch_shadow_fix1
MOD_FIX2=rust_livepatch_shadow_fix2

for m in $MOD_TARGET $MOD_FIX1 $MOD_FIX2; do
	[[ -e test_modules/$m.ko ]] || skip "test_modules/$m.ko was not built"
done

setup_config

# How many lines since the test began contain the text.
function count {
	dmesg | awk -v last_dmesg="$LAST_DMESG" 'p; $0 == last_dmesg { p=1 }' | grep -c -- "$1"
}

start_test "the shadow-variable fixes of livepatch-shadow-mod, in Rust"

load_mod $MOD_TARGET
site=$(leak_site dummy_alloc $MOD_TARGET)
[[ -n $site ]] || die "dummy_alloc of $MOD_TARGET is not in /proc/kallsyms"
# Dummies allocated unpatched: their leaks are lost.
sleep 3
load_lp $MOD_FIX1
# A dummy lives 12 s; the module frees expired ones every 3 s.
sleep 16
load_lp $MOD_FIX2
sleep 7
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
# One int per dummy allocated unpatched, each reported leaked when freed.
expect_leaks dummy_alloc $MOD_TARGET "$site" "$leaked"
expect_no_stack_dump

exit 0
