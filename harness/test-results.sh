#!/usr/bin/env bash
# Host test of harness/results.sh: results are read from a console log that
# holds raw control bytes and NULs, as a test's output may. Prints
# "PASS harness-results" or "FAIL harness-results why".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/results.sh"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
{
	printf 'KLP-INIT mode=check\n'
	printf 'a test printed \x01\x02\x00 and \xff\xfe bytes\n'
	printf 'KLP-RESULT one.sh PASS\n'
	printf '\x00\x00\x1b[0m\n'
	printf 'KLP-RESULT two.sh FAIL exit 1\n'
	printf 'KLP-RESULT three.sh FAIL exit 1\n'
	printf 'KLP-RESULT three.sh PASS\n'
	printf 'KLP-DONE\n'
} >"$log"

got=$(collect_results "$log" ":x" one.sh two.sh three.sh four.sh)
want="PASS one.sh:x
FAIL two.sh:x exit 1
PASS three.sh:x
FAIL four.sh:x no result from the guest"
if [[ "$got" != "$want" ]]; then
	echo "FAIL harness-results collect_results read: $(echo "$got" | tr '\n' '|')"
elif ! guest_finished "$log"; then
	echo "FAIL harness-results guest_finished missed KLP-DONE"
else
	echo "PASS harness-results"
fi
