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
# KUnit's KTAP on a console, as the kunit boot reads it.
src=$(mktemp)
trap 'rm -f "$log" "$src"' EXIT
cat >"$src" <<'RS'
#[kunit_tests(rust_x)]
mod tests {
    #[test]
    fn passes() {}
    #[test]
    #[cfg(CONFIG_Y)]
    fn fails() {}
    fn helper() {}
    #[test]
    fn skipped() {}
    #[test]
    fn missing() {}
}
RS
cases=$(kunit_cases "$src" | tr '\n' ' ')
{
	printf '[    1.000000] KTAP version 1\n'
	printf '[    1.000001] 1..1\n'
	printf '[    1.000002]     KTAP version 1\n'
	printf '[    1.000003]     # Subtest: rust_x\n'
	printf '[    1.000004]     1..3\n'
	printf '[    1.000005]     ok 1 passes\r\n'
	printf '[    1.000006]     # fails: ASSERTION FAILED\n'
	printf '[    1.000007]     not ok 2 fails\n'
	printf '[    1.000008]     ok 3 skipped # SKIP no hardware\n'
	printf '[    1.000009] # rust_x: pass:1 fail:1 skip:1 total:3\n'
	printf '[    1.000010] not ok 1 rust_x\n'
	printf '[    1.000011]     ok 4 missing\n'
} >"$log.k"
# shellcheck disable=SC2086
kgot=$(collect_kunit "$log.k" $cases)
rm -f "$log.k"
kwant="PASS kunit:rust_x.passes
FAIL kunit:rust_x.fails failed in the guest
FAIL kunit:rust_x.skipped skipped
FAIL kunit:rust_x.missing not run"

# A guest that cannot boot (no kernel in the folder) fails each test asked.
rg_results=$(mktemp)
trap 'rm -f "$log" "$src" "$rg_results"' EXIT
KLP_FLAVOUR=no-such-kernel KLP_RESULTS=$rg_results KLP_RESULT_SUFFIX=:s \
	"$here/run-guest.sh" check one.sh two.sh 2>/dev/null
rg_got=$(cut -d' ' -f1-4 "$rg_results")
rg_want="FAIL one.sh:s not booted:
FAIL two.sh:s not booted:"

if [[ "$rg_got" != "$rg_want" ]]; then
	echo "FAIL harness-results run-guest without a kernel wrote: $(echo "$rg_got" | tr '\n' '|')"
elif [[ "$got" != "$want" ]]; then
	echo "FAIL harness-results collect_results read: $(echo "$got" | tr '\n' '|')"
elif ! guest_finished "$log"; then
	echo "FAIL harness-results guest_finished missed KLP-DONE"
elif [[ "$cases" != "rust_x.passes rust_x.fails rust_x.skipped rust_x.missing " ]]; then
	echo "FAIL harness-results kunit_cases read: $cases"
elif [[ "$kgot" != "$kwant" ]]; then
	echo "FAIL harness-results collect_kunit read: $(echo "$kgot" | tr '\n' '|')"
else
	echo "PASS harness-results"
fi
