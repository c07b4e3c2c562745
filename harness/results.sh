# Sourced by run-guest.sh (and its test, harness/test-results.sh): reading
# what a guest reported from its console log.

# collect_results LOG SUFFIX TEST... - one "PASS name" / "FAIL name why"
# line per TEST on stdout, from the last "KLP-RESULT <test> PASS|FAIL ..."
# line of LOG; a test with no such line failed. SUFFIX is appended to each
# name. The log is read as text whatever bytes a test printed (-a: a single
# control byte would otherwise make grep answer "binary file matches").
collect_results() {
	local log=$1 suffix=$2 t line name verdict why
	shift 2
	for t in "$@"; do
		line=$(grep -aE "^KLP-RESULT $t (PASS|FAIL)" "$log" | tail -n1)
		if [[ -z $line ]]; then
			echo "FAIL $t$suffix no result from the guest"
		else
			read -r name verdict why <<<"${line#KLP-RESULT }"
			echo "$verdict $name$suffix${why:+ $why}"
		fi
	done
}

# print_summary RESULTS LABEL SECONDS SUMMARY-FILE - every result, then
# "N passed, N failed", also into SUMMARY-FILE (CI sums those files);
# fails when a result did
print_summary() {
	local results=$1 pass fail
	pass=$(grep -c '^PASS ' "$results")
	fail=$(grep -c '^FAIL ' "$results")
	echo
	echo "== results ($2, ${3}s)"
	sed 's/^/  /' "$results"
	echo "$pass passed, $fail failed" | tee "$4"
	[[ $fail -eq 0 ]]
}

# guest_finished LOG - whether the guest's init got to the end
guest_finished() {
	grep -aq '^KLP-DONE' "$1"
}

# kunit_cases FILE... - the KUnit cases the Rust sources declare, one
# "suite.case" per line: each `#[kunit_tests(suite)]` module's `#[test]`
# functions. What the guest must report, so that a case that never ran fails.
kunit_cases() {
	awk '
		/#\[kunit_tests\(/ { s = $0; sub(/.*#\[kunit_tests\(/, "", s); sub(/\).*/, "", s); suite = s }
		/^[[:space:]]*#\[test\]/ { want = suite != "" }
		want && /^[[:space:]]*fn [a-z_0-9]+/ {
			f = $0; sub(/^[[:space:]]*fn /, "", f); sub(/[^a-z_0-9].*/, "", f)
			print suite "." f; want = 0
		}
	' "$@"
}

# collect_kunit LOG CASE... - one "PASS kunit:suite.case" / "FAIL ..." line
# per CASE ("suite.case") from the KTAP output KUnit printed to the console
# of LOG (timestamps and all); a case not reported, or skipped, fails.
collect_kunit() {
	local log=$1 c verdict
	shift
	local ktap
	ktap=$(tr -d '\r' <"$log" | sed -E 's/^\[ *[0-9]+\.[0-9]+\] //' | awk '
		/^[[:space:]]+# Subtest: / { suite = $3; next }
		suite != "" && /^[[:space:]]+(not )?ok [0-9]+ / {
			v = ($1 == "not") ? "FAIL" : "PASS"
			name = (v == "FAIL") ? $4 : $3
			if ($0 ~ /# SKIP/) v = "SKIP"
			print suite "." name, v
		}
		/^(not )?ok [0-9]+ / { suite = "" }
	')
	for c in "$@"; do
		verdict=$(awk -v c="$c" '$1 == c { v = $2 } END { print v }' <<<"$ktap")
		case $verdict in
		PASS) echo "PASS kunit:$c" ;;
		FAIL) echo "FAIL kunit:$c failed in the guest" ;;
		SKIP) echo "FAIL kunit:$c skipped" ;;
		*) echo "FAIL kunit:$c not run" ;;
		esac
	done
}

# doctest_cases FILE... - the KUnit cases the kernel crate's doctests become
# (CONFIG_RUST_KERNEL_DOCTESTS) for FILEs under rust/kernel/, one
# "rust_doctests_kernel.rust_doctest_kernel_<path>_<n>" per code block
# rustdoc builds as a test: a `///` or `//!` fence whose attributes name no
# other language and none of ignore, compile_fail, text. (The generator
# numbers a file's cases 0.. in the order of their names, which sort line
# numbers as text; only the count matters here.)
doctest_cases() {
	local f rel count i
	for f in "$@"; do
		[[ $f == */rust/kernel/* || $f == rust/kernel/* ]] || continue
		rel=${f#*rust/kernel/}
		rel=${rel//\//_}
		rel=${rel//./_}
		count=$(awk '
			/^[[:space:]]*\/\/[\/!][[:space:]]*```/ {
				if (open) { open = 0; next }
				open = 1
				info = $0; sub(/.*```/, "", info)
				n = split(info, attr, /[[:space:],]+/)
				test = 1
				for (i = 1; i <= n; i++) {
					a = attr[i]
					if (a == "") continue
					if (a == "ignore" || a ~ /^ignore-/ || a == "compile_fail" || a == "text") test = 0
					else if (a != "rust" && a != "no_run" && a != "should_panic" &&
						 a != "test_harness" && a != "standalone_crate" && a !~ /^edition[0-9]+$/) test = 0
				}
				tests += test
			}
			END { print tests + 0 }
		' "$f")
		for ((i = 0; i < count; i++)); do
			echo "rust_doctests_kernel.rust_doctest_kernel_${rel}_$i"
		done
	done
}

# collect_kunit_suite LOG SUITE - one result for a whole KUnit suite: PASS
# with its case count if KUnit reported it ok, FAIL naming the failed cases.
collect_kunit_suite() {
	local log=$1 suite=$2 summary failed
	summary=$(tr -d '\r' <"$log" | grep -aoE "# $suite: pass:[0-9]+ fail:[0-9]+ skip:[0-9]+ total:[0-9]+" | tail -n 1)
	if [[ -z $summary ]]; then
		echo "FAIL kunit:$suite not run"
	elif [[ $summary == *" fail:0 "* ]]; then
		echo "PASS kunit:$suite (${summary#*: })"
	else
		failed=$(tr -d '\r' <"$log" | sed -E 's/^\[ *[0-9]+\.[0-9]+\] //' | awk -v suite="$suite" '
			$0 ~ "# Subtest: " suite "$" { in_suite = 1; next }
			in_suite && /^(not )?ok [0-9]+ / { in_suite = 0 }
			in_suite && match($0, /not ok [0-9]+ [a-z0-9_]+/) {
				split(substr($0, RSTART, RLENGTH), w, " "); printf "%s ", w[4]
			}')
		echo "FAIL kunit:$suite (${summary#*: }; failed: $failed)"
	fi
}
