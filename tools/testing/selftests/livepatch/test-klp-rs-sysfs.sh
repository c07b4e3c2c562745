#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs: garbage written to a livepatch's sysfs files is refused with the
# errno upstream gives, and changes nothing.
#
# With test_klp_livepatch (upstream's patch of cmdline_proc_show()) loaded
# and its transition over, each file gets ten kinds of garbage, every one a
# single write(2) (busybox dd), then the values that parse but are refused
# in that state. Every result is logged as "% write <value> > <file>: <ok or
# errno>" and compared by check_result; after each write the patch must still
# be enabled, out of transition, patched, and /proc/cmdline patched.
#
# The upstream C core is the reference for every file but "signal", which
# klp-rs adds back (upstream removed it in 5.1); the "signal" test is klp-rs
# only and comes last, as check_result stops the script at the first test
# that fails. Writing 1 to "signal" during a transition is covered by
# test-klp-rs-signal.sh.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_LIVEPATCH=test_klp_livepatch
LP_DIR=$SYSFS_KLP_DIR/$MOD_LIVEPATCH
PATCHED_CMDLINE="$MOD_LIVEPATCH: this has been live patched"

setup_config

PAYLOAD_DIR=$(mktemp -d)
trap 'rm -rf "$PAYLOAD_DIR"; teardown $MOD_LIVEPATCH; cleanup' EXIT INT TERM HUP

# expect_state() - the patch is loaded, enabled and done, as if untouched
function expect_state() {
	expect_value "$LP_DIR/enabled" 1
	expect_value "$LP_DIR/transition" 0
	expect_value "$LP_DIR/vmlinux/patched" 1
	expect_value "$LP_DIR/replace" 0
	expect_value "$LP_DIR/stack_order" 1
	expect_value /proc/cmdline "$PATCHED_CMDLINE"
	expect_value /proc/$$/patch_state -1
}

# errno_of(text) - the errno name for a strerror() text into $result
function errno_of() {
	case "$1" in
	"Invalid argument") result=EINVAL ;;
	"Permission denied") result=EACCES ;;
	"No such file or directory") result=ENOENT ;;
	"Device or resource busy") result=EBUSY ;;
	"Input/output error") result=EIO ;;
	"Argument list too long") result=E2BIG ;;
	"Operation not permitted") result=EPERM ;;
	*) result="'$1'" ;;
	esac
}

# Payloads, one file each; LABEL is how the log shows them, with no
# backslash: dmesg would turn it back into the byte, and check_result's
# "echo -e" of a diff too, which would put binary bytes on the console. The
# garbage is
# invalid for kstrtobool(), which looks at the first character only (and the
# second after an 'o'): y/Y/t/T/1 and n/N/f/F/0 followed by anything parse.
# An empty write never reaches a sysfs store and so is not among them.
declare -A LABEL
function payload() { # name label printf-format
	LABEL[$1]=$2
	printf -- "$3" >"$PAYLOAD_DIR/$1"
}
payload two "2" '2'
payload minus_one "-1" '-1'
payload abc "abc" 'abc'
payload space_one "' 1'" ' 1'
payload newline "'<LF>'" '\n'
payload long "5000 x 'a'" "$(printf 'a%.0s' {1..5000})"
payload ctrl "<0x01>" '\x01'
payload plus_one "+1" '+1'
payload o "o" 'o'
payload nul_one "<0x00>1" '\x001'
GARBAGE=(two minus_one abc space_one newline long ctrl plus_one o nul_one)
# values kstrtobool() accepts
payload one "1" '1'
payload one_nl "'1<LF>'" '1\n'
payload one_one "'1 1'" '1 1'
payload Y "Y" 'Y'
payload on "on" 'on'
payload true "true" 'true'
payload zero "0" '0'
payload N "N" 'N'
payload zero_x_one "0x1" '0x1'

[[ $(stat -c %s "$PAYLOAD_DIR/long") == 5000 && $(stat -c %s "$PAYLOAD_DIR/nul_one") == 2 ]] ||
	fail "payloads not as intended"

# write_payload(path, payload) - one write(2) of the payload to path, logged
#	with its result: ok, or the errno of the open or the write
function write_payload() {
	local out
	if out=$(dd if="$PAYLOAD_DIR/$2" of="$1" bs=8192 count=1 conv=notrunc 2>&1); then
		result=ok
	else
		out=$(grep '^dd: ' <<<"$out")
		errno_of "${out##*: }"
	fi
	log "% write ${LABEL[$2]} > $1: $result"
}

# write_garbage(path) - every kind of garbage to path, the state checked after each
function write_garbage() {
	local p
	for p in "${GARBAGE[@]}"; do
		write_payload "$1" $p
		expect_state
	done
}

# garbage_result(path, result) - the log lines write_garbage() must give
function garbage_result() {
	local p
	for p in "${GARBAGE[@]}"; do
		echo "% write ${LABEL[$p]} > $1: $2"
	done
}

# read_file(path) - read path, logging the result: ok or the errno
function read_file() {
	local out
	if out=$(cat "$1" 2>&1 >/dev/null); then
		result=ok
	else
		errno_of "${out##*: }"
	fi
	log "% cat $1: $result"
}

LOG_LOAD="% insmod test_modules/$MOD_LIVEPATCH.ko
livepatch: enabling patch '$MOD_LIVEPATCH'
livepatch: '$MOD_LIVEPATCH': initializing patching transition
livepatch: '$MOD_LIVEPATCH': starting patching transition
livepatch: '$MOD_LIVEPATCH': completing patching transition
livepatch: '$MOD_LIVEPATCH': patching complete"

LOG_UNLOAD="% echo 0 > $LP_DIR/enabled
livepatch: '$MOD_LIVEPATCH': initializing unpatching transition
livepatch: '$MOD_LIVEPATCH': starting unpatching transition
livepatch: '$MOD_LIVEPATCH': completing unpatching transition
livepatch: '$MOD_LIVEPATCH': unpatching complete
% rmmod $MOD_LIVEPATCH"


# - enabled parses with kstrtobool(): garbage is -EINVAL, and so is asking
#   for the state the patch is in already
# - force parses with kstrtobool() too: garbage is -EINVAL; a false value
#   is accepted and does nothing ("0x1" reads as "0"); true is -EINVAL
#   with no transition to force; reading it (mode 0200) is -EACCES
# - the read-only files (mode 0444) refuse opening for writing with -EACCES
#   (sysfs checks the mode even for root), whatever would be written

start_test "garbage written to the upstream sysfs files"

load_lp $MOD_LIVEPATCH
expect_state

write_garbage "$LP_DIR/enabled"
for p in one one_nl one_one Y on true; do
	write_payload "$LP_DIR/enabled" $p
	expect_state
done

write_garbage "$LP_DIR/force"
for p in zero N zero_x_one one one_nl one_one; do
	write_payload "$LP_DIR/force" $p
	expect_state
done
read_file "$LP_DIR/force"

for f in transition replace stack_order vmlinux/patched; do
	write_garbage "$LP_DIR/$f"
	write_payload "$LP_DIR/$f" one
	expect_state
	write_payload "$LP_DIR/$f" zero
	expect_state
done

disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH

check_result "$LOG_LOAD
$(garbage_result "$LP_DIR/enabled" EINVAL)
% write 1 > $LP_DIR/enabled: EINVAL
% write '1<LF>' > $LP_DIR/enabled: EINVAL
% write '1 1' > $LP_DIR/enabled: EINVAL
% write Y > $LP_DIR/enabled: EINVAL
% write on > $LP_DIR/enabled: EINVAL
% write true > $LP_DIR/enabled: EINVAL
$(garbage_result "$LP_DIR/force" EINVAL)
% write 0 > $LP_DIR/force: ok
% write N > $LP_DIR/force: ok
% write 0x1 > $LP_DIR/force: ok
% write 1 > $LP_DIR/force: EINVAL
% write '1<LF>' > $LP_DIR/force: EINVAL
% write '1 1' > $LP_DIR/force: EINVAL
% cat $LP_DIR/force: EACCES
$(for f in transition replace stack_order vmlinux/patched; do
	garbage_result "$LP_DIR/$f" EACCES
	echo "% write 1 > $LP_DIR/$f: EACCES"
	echo "% write 0 > $LP_DIR/$f: EACCES"
done)
$LOG_UNLOAD"
expect_no_stack_dump


# klp-rs only from here on.

# - signal is write-only like force (upstream 5.0 had it; klp-rs adds it
#   back): reading it is -EACCES
# - it accepts exactly "1" (or "1\n"), and only while this patch is in
#   transition: garbage, every other value kstrtobool() would take, and "1"
#   outside a transition are -EINVAL

start_test "garbage written to signal"

load_lp $MOD_LIVEPATCH
expect_state
[[ -e "$LP_DIR/signal" ]] || fail "$LP_DIR/signal does not exist"
rights=$(stat --format '%A' "$LP_DIR/signal")
[[ "$rights" == "--w-------" ]] || fail "$LP_DIR/signal has mode $rights, expected --w-------"
read_file "$LP_DIR/signal"
write_garbage "$LP_DIR/signal"
for p in one one_nl zero one_one Y on true zero_x_one; do
	write_payload "$LP_DIR/signal" $p
	expect_state
done

disable_lp $MOD_LIVEPATCH
unload_lp $MOD_LIVEPATCH

check_result "$LOG_LOAD
% cat $LP_DIR/signal: EACCES
$(garbage_result "$LP_DIR/signal" EINVAL)
% write 1 > $LP_DIR/signal: EINVAL
% write '1<LF>' > $LP_DIR/signal: EINVAL
% write 0 > $LP_DIR/signal: EINVAL
% write '1 1' > $LP_DIR/signal: EINVAL
% write Y > $LP_DIR/signal: EINVAL
% write on > $LP_DIR/signal: EINVAL
% write true > $LP_DIR/signal: EINVAL
% write 0x1 > $LP_DIR/signal: EINVAL
$LOG_UNLOAD"
expect_no_stack_dump

exit 0
