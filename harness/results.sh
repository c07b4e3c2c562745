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

# guest_finished LOG - whether the guest's init got to the end
guest_finished() {
	grep -aq '^KLP-DONE' "$1"
}
