#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Helpers shared by klp-rs' own selftests (test-klp-rs-*.sh), sourced after
# upstream's functions.sh.

fail() {
	echo -e "FAIL: $1\n"
	die "livepatch kselftest(s) failed"
}

# teardown(module...) - on the way out, whatever the outcome, leave none
# of these patches loaded: a test that failed half-way would otherwise
# leave them to the tests after it
function teardown() {
	local mod dir i
	for mod in "$@"; do
		dir=$SYSFS_KLP_DIR/$mod
		if [[ -e "$dir" && "$(cat "$dir/enabled" 2>/dev/null)" == 1 ]]; then
			echo 0 >"$dir/enabled" 2>/dev/null
		fi
		for ((i = 0; i < 300; i++)); do
			[[ -e "$dir" ]] || break
			sleep .1
		done
		for ((i = 0; i < 100; i++)); do
			[[ "$(cat /sys/module/$mod/refcnt 2>/dev/null)" == 0 ]] && break
			sleep .1
		done
		[[ -e /sys/module/$mod ]] && rmmod "$mod" 2>/dev/null
	done
}

# leak_site(symbol, module) - "<lo> <hi>", the addresses of the loaded
# module's function, for expect_leaks (16 hex digits each)
function leak_site() {
	grep "\[$2\]\$" /proc/kallsyms | sort | awk -v sym="$1" '
		found { print lo, $1; exit }
		$3 == sym { lo = $1; found = 1 }'
}

# expect_leaks(symbol, module, site, count) - on a kernel with kmemleak, tell
# the guest's harness that up to COUNT objects allocated from SYMBOL of
# MODULE (its SITE from leak_site, taken while it was loaded) are leaked on
# purpose: reported by this or a later test's scan, they fail neither
function expect_leaks() {
	[[ -w /sys/kernel/debug/kmemleak ]] || return 0
	[[ -n "$3" ]] || die "no address range for $1 of $2"
	echo "$1 $2 $3 $4" >>/tmp/klp-expected-leaks
}

# expect_no_stack_dump() - no stack dump or warning since start_test
function expect_no_stack_dump() {
	local dump
	dump=$(dmesg | awk -v last_dmesg="$LAST_DMESG" 'p; $0 == last_dmesg { p=1 }' |
	       grep -e 'Call Trace' -e 'cut here' -e 'WARNING:' -e 'BUG:')
	[[ -z "$dump" ]] || fail "the kernel dumped a stack:\n$dump"
}

# read_value(path) - the first line of path into $value, without a fork
function read_value() {
	value=
	IFS= read -r value 2>/dev/null <"$1" || [[ -n "$value" ]] || value="<unreadable>"
}

# expect_value(path, value) - path must read value now
function expect_value() {
	read_value "$1"
	[[ "$value" == "$2" ]] || fail "$1 is '$value', expected '$2'"
}

# expect_out(pattern) - the output a test kept in $out (a command's, by
# its own helper) must match the extended grep pattern
function expect_out() {
	grep -qE -- "$1" <<<"$out" || fail "the output lacks /$1/:\n$out"
}

# leftovers() - what a refused module must leave as it was
function leftovers() {
	ls $SYSFS_KLP_DIR
	cat /proc/modules
}

# refuse(module, error) - loading module must fail with error, as kmod's
# insmod words it (EINVAL: "Invalid parameters", ENOEXEC: "Invalid module
# format"), and leave no patch or module behind
function refuse() {
	local mod="$1" before after
	before=$(leftovers)
	log "% insmod test_modules/$mod.ko"
	ret=$(insmod "test_modules/$mod.ko" 2>&1)
	if [[ -z "$ret" ]]; then
		[[ -e $SYSFS_KLP_DIR/$mod ]] && disable_lp "$mod"
		unload_lp "$mod"
		fail "$mod unexpectedly loaded"
	fi
	log "$ret"
	[[ "$ret" == "insmod: ERROR: could not insert module test_modules/$mod.ko: $2" ]] ||
		fail "loading $mod: '$ret', expected error '$2'"
	after=$(leftovers)
	[[ "$before" == "$after" ]] ||
		fail "refusing $mod left something behind:$(diff <(echo "$before") <(echo "$after"))"
}

# check_log(expected) - upstream's check_result for modules whose names do
# not contain "test_klp" (which check_result keeps lines by): the commands
# logged ("% ...") and the core's "livepatch:" lines since start_test
function check_log() {
	check_log_with '^livepatch:' "$@"
}

# check_log_with(pattern, expected) - check_log, also keeping the lines that
# match the grep pattern (a module's own messages)
function check_log_with() {
	local also="$1"; shift
	local expect="$*"
	local result

	result=$(dmesg | awk -v last_dmesg="$LAST_DMESG" 'p; $0 == last_dmesg { p=1 }' |
		 sed -e 's/^\[[ 0-9.]*\] //' -e 's/^\[[ ]*[CT][0-9]*\] //' |
		 grep -e '^livepatch:' -e '^% ' -e "$also" | grep -v '\(tainting\|taints\) kernel')

	if [[ "$expect" == "$result" ]]; then
		echo "ok"
	else
		echo -e "not ok\n\n$(diff -upr --label expected --label result <(echo "$expect") <(echo "$result"))\n"
		die "livepatch kselftest(s) failed"
	fi
}

# wait_for(seconds, command...) - until the command succeeds, polling often
# (a stress test's cycle should not cost more than it takes); fails after
# that many seconds
function wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.01
	done
}

# on_debug_kernel() - whether this is the debug kernel (KASAN, lockdep,
# kmemleak: kmemleak's file tells it), which runs stress tests several times
# slower
function on_debug_kernel() {
	[[ -e /sys/kernel/debug/kmemleak ]]
}

# stress_budget(plain, debug) - the seconds a stress test may run: the
# debug kernel's budget bounds a shorter run that still exercises every path
# under its checkers, and keeps make check-debug inside CI's time
function stress_budget() {
	if on_debug_kernel; then echo "$2"; else echo "$1"; fi
}

# stress_cycles(default) - how many cycles a stress test runs:
# klp.stress_cycles=N on the guest's command line (through KLP_APPEND, for a
# shorter run), else $KLP_STRESS_CYCLES, else default
function stress_cycles() {
	local n
	n=$(sed -n 's/.*klp\.stress_cycles=\([0-9]*\).*/\1/p' /proc/cmdline)
	echo "${n:-${KLP_STRESS_CYCLES:-$1}}"
}
