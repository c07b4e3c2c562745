#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs: shadow variables beyond what test-shadow-vars covers: 100,000 live
# variables, get_or_alloc racing on every CPU, constructor failure, free_all
# destructor counts, GFP_ATOMIC allocation under a spinlock.

. $(dirname $0)/functions.sh

MOD_TEST=test_klp_rs_shadow

setup_config

# check_result with the hashed pointer of "<%p, %lx>" masked as PTR.
function check_result_masked {
	local expect="$*"
	local result

	result=$(dmesg | awk -v last_dmesg="$LAST_DMESG" 'p; $0 == last_dmesg { p=1 }' | \
		 grep -e 'livepatch:' -e 'test_klp' | \
		 grep -v '\(tainting\|taints\) kernel' | \
		 sed -e 's/^\[[ 0-9.]*\] //' -e 's/^\[[ ]*[CT][0-9]*\] //' \
		     -e 's/<[0-9a-fx]*, /<PTR, /')

	if [[ "$expect" == "$result" ]] ; then
		echo "ok"
	else
		echo -e "not ok\n\n$(diff -upr --label expected --label result <(echo "$expect") <(echo "$result"))\n"
		die "livepatch kselftest(s) failed"
	fi
}

start_test "shadow variables at scale, racing, failing and in atomic context"

load_mod $MOD_TEST
unload_mod $MOD_TEST

check_result_masked "% insmod test_modules/$MOD_TEST.ko
livepatch: Failed to construct shadow variable <PTR, 4b52> (-12)
livepatch: Failed to construct shadow variable <PTR, 4b52> (-12)
$MOD_TEST: all shadow variable checks passed
% rmmod $MOD_TEST"

exit 0
