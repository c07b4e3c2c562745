#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs stress: one patch's sysfs files written at once from four sides.
# For 60 s (100 s on the debug kernel; or until the patch module was
# loaded klp.stress_cycles times, default 100), four writers pick at random: 0 or 1 to enabled, 1 to force,
# 1 to signal of test_klp_rs_hammer_patch, which replaces
# test_klp_rs_busy_fn(). Meanwhile a reader walks every thread's patch_state
# (each must read -1, 0 or 1), a cycler removes the patch module and loads
# it again whenever a disable has freed the patch, and the test toggles
# test_klp_rs_busy's hold, so that its kthread, asleep in the original
# function, sometimes holds a patching transition open and sometimes not.
# A write may succeed, be refused (EINVAL: the patch is not in the state it
# needs) or find the patch gone (ENOENT, ENODEV); anything else fails.
#
# Then the system must be consistent: the patch either enabled with no
# transition or gone, no task with TIF_PATCH_PENDING (test_klp_rs_busy's
# "flagged") or a patch_state other than -1, the module removable, no stack
# dump. The counts are printed, and bounded below so that the test cannot
# pass by doing nothing.
#
# signal is klp-rs' own file (see test-klp-rs-signal.sh): on a core without
# it, such as the C core, nothing writes it and the summary says so. The
# rest is upstream behaviour: it passes on the C core too.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_TARGET=test_klp_rs_busy
MOD_LIVEPATCH=test_klp_rs_hammer_patch
PARAMS=/sys/module/$MOD_TARGET/parameters
LP_DIR=$SYSFS_KLP_DIR/$MOD_LIVEPATCH
# Loads at most, and the time bound: a patch lives one to a few seconds, so
# the time ends the hammering first unless klp.stress_cycles asks for fewer
# loads. Time, not a count, bounds the slow debug kernel's run too.
CYCLES=$(stress_cycles 100)
# The debug kernel forks about ten times slower: give it the time to write
# each file a few times.
BUDGET=$(stress_budget 60 100)
MIN_LOADS=$((CYCLES < 2 ? CYCLES : 2))
WRITERS=4

for m in $MOD_TARGET $MOD_LIVEPATCH; do
	[[ -e test_modules/$m.ko ]] || skip "test_modules/$m.ko was not built"
done

setup_config
# Every reversal logs a debug line: thousands of them would push the
# start_test canary out of the log, and expect_no_stack_dump would look at
# nothing. cleanup restores the setting.
echo 'file kernel/livepatch/* -p' >"$SYSFS_DEBUG_DIR/dynamic_debug/control"

WORK=$(mktemp -d /tmp/klp-rs-stress-sysfs.XXXXXX) || die "mktemp failed"
STOP=$WORK/stop
FAILURES=$WORK/failures
LOCK=$WORK/lock
JOB_PIDS=()
STUCK=

trap 'stop_jobs; [[ -e $PARAMS/hold ]] && echo 0 >$PARAMS/hold; teardown $MOD_LIVEPATCH $MOD_TARGET; rm -rf "$WORK"; cleanup' EXIT INT TERM HUP

# note(message) - a failure seen by a background job, for the main shell
# to report (die in a job would only end the job)
function note() {
	echo "$*" >>"$FAILURES"
}

# nap() - a pause of 0 to 19 ms between two writes, so that four writers
# leave the transitions room to complete now and then, and forced ones do
# not flood the console with their warning
function nap() {
	local t
	printf -v t '0.%03d' $((RANDOM % 20))
	sleep "$t"
}

# The lock. Forcing an unpatching transition marks the patch forced, and
# the core (upstream's rule, which klp-rs keeps) then never puts its
# module: it could not be removed again. So force may only ever complete a
# patching transition. Writers of enabled and of force take this lock, and
# force is written only when enabled reads 1 under it: during a transition
# enabled 1 means the patching direction, and only a write of enabled turns
# it (the cycler's insmod makes a new patch, patching). signal changes no
# direction and takes no lock. mkdir, as the guest has no flock(1).
function lock() {
	until mkdir "$LOCK" 2>/dev/null; do
		[[ -e $STOP ]] && return 1
		sleep 0.005
	done
}

function unlock() {
	rmdir "$LOCK"
}

# try_write(value, path) - one write(2) of value to path; its outcome into
# $outcome: ok, refused (EINVAL), gone (ENOENT when opening a file of a
# removed directory, ENODEV when the file went between open and write);
# anything else is noted as a failure
function try_write() {
	local msg=
	if echo "$1" 2>"$ERR" >"$2"; then
		outcome=ok
		return
	fi
	IFS= read -r msg <"$ERR"
	case $msg in
	*"Invalid argument") outcome=refused ;;
	*"No such file or directory" | *"No such device") outcome=gone ;;
	# The file went while the directory was still there: the kobject's
	# removal takes the attributes first. The shell's ">" opens with
	# O_CREAT, and creating a name in a directory whose inode has no create
	# operation (kernfs') is EACCES (lookup_open() in fs/namei.c), the same
	# answer as "echo 1 > $LP_DIR/no-such-file". Counted apart, as gone.
	*"Permission denied") outcome=denied ;;
	*)
		outcome=unexpected
		note "writing $1 to $2: ${msg:-failed with no message}"
		;;
	esac
}

# writer(n) - random writes until told to stop; the counts go to
# $WORK/counts.<n> as "<file> <outcome> <count>" lines
function writer() {
	local n=$1 actions=3 file
	local -A count=()
	ERR=$WORK/err.$n
	# Four subshells must not draw the same numbers.
	RANDOM=$((BASHPID * 31 + n))
	[[ $HAVE_SIGNAL == 1 ]] && actions=4
	while [[ ! -e $STOP ]]; do
		case $((RANDOM % actions)) in
		0 | 1)
			file=enabled
			lock || break
			try_write $((RANDOM % 2)) "$LP_DIR/enabled"
			unlock
			;;
		2)
			file=force
			lock || break
			read_value "$LP_DIR/enabled"
			if [[ "$value" == 1 ]]; then
				try_write 1 "$LP_DIR/force"
			else
				outcome=skipped
			fi
			unlock
			;;
		3)
			file=signal
			try_write 1 "$LP_DIR/signal"
			;;
		esac
		count["$file $outcome"]=$((${count["$file $outcome"]:-0} + 1))
		nap
	done
	for file in "${!count[@]}"; do
		echo "$file ${count[$file]}"
	done >"$WORK/counts.$n"
}

# reader() - every /proc/<pid>/task/<tid>/patch_state, over and over, until
# told to stop; a thread that vanished before its read is no error
function reader() {
	local f v reads=0 vanished=0 passes=0
	while [[ ! -e $STOP ]]; do
		for f in /proc/[0-9]*/task/[0-9]*/patch_state; do
			v=
			if ! IFS= read -r v 2>/dev/null <"$f" && [[ -z "$v" ]]; then
				((vanished++))
				continue
			fi
			case $v in
			-1 | 0 | 1) ((reads++)) ;;
			*) note "$f reads '$v'" ;;
			esac
		done
		((passes++))
	done
	echo "$reads $vanished $passes" >"$WORK/reader"
}

# cycler() - whenever the patch is gone, remove its module and load it
# again, until told to stop or CYCLES loads are done; the number of loads
# goes to $WORK/loads
function cycler() {
	local loads=1 out i
	while [[ ! -e $STOP ]]; do
		if [[ ! -e $LP_DIR ]]; then
			# The core puts the module only after the directory goes.
			for ((i = 0; i < 300; i++)); do
				read_value /sys/module/$MOD_LIVEPATCH/refcnt
				[[ "$value" == 0 ]] && break
				sleep 0.1
			done
			if ! out=$(rmmod $MOD_LIVEPATCH 2>&1); then
				note "after load $loads: rmmod: $out (refcnt $value)"
				break
			fi
			if ((loads >= CYCLES)); then
				: >"$STOP"
				break
			fi
			if ! out=$(insmod test_modules/$MOD_LIVEPATCH.ko 2>&1); then
				note "load $((loads + 1)): insmod: $out"
				break
			fi
			((loads++))
		fi
		sleep 0.05
	done
	echo "$loads" >"$WORK/loads"
}

# alive(pid) - the job has not ended yet
function alive() {
	local state=
	read -r _ _ state _ 2>/dev/null <"/proc/$1/stat" || return 1
	[[ "$state" != Z ]]
}

# stop_jobs() - tell the background jobs to stop and reap them, waiting
# 60 s at most: a job still there then is stuck, in the kernel most likely;
# those go to $STUCK with where they sleep
function stop_jobs() {
	local pid end=$((SECONDS + 60))
	((${#JOB_PIDS[@]})) || return 0
	: >"$STOP"
	for pid in "${JOB_PIDS[@]}"; do
		while alive "$pid" && ((SECONDS < end)); do
			sleep 0.1
		done
		if alive "$pid"; then
			read_value "/proc/$pid/wchan"
			STUCK="$STUCK $pid (in $value)"
			kill -9 "$pid" 2>/dev/null
		else
			wait "$pid" 2>/dev/null
		fi
	done
	JOB_PIDS=()
}

# settle() - into $state: "patched" (enabled, no transition), "gone" (no
# patch directory), or what it reads otherwise
function settle() {
	local enabled
	state=gone
	[[ -e $LP_DIR ]] || return
	read_value "$LP_DIR/enabled"
	enabled=$value
	read_value "$LP_DIR/transition"
	[[ -e $LP_DIR ]] || return
	state="enabled $enabled, transition $value"
	[[ "$enabled" == 1 && "$value" == 0 ]] && state=patched
}

# total(file, outcome) - the writers' count of that outcome
function total() {
	echo "${totals["$1 $2"]:-0}"
}

start_test "four writers hammer enabled, force and signal of one patch for up to ${BUDGET}s"

load_mod $MOD_TARGET
load_lp_nowait $MOD_LIVEPATCH
HAVE_SIGNAL=0
[[ -e $LP_DIR/signal ]] && HAVE_SIGNAL=1
# What a writer meets in the moment a file is gone and its directory not yet.
ERR=$WORK/err.0
try_write 1 "$LP_DIR/no-such-file"
[[ $outcome == denied ]] || die "writing to a file that is not there: '$outcome', expected EACCES"

begin=$SECONDS
for ((w = 1; w <= WRITERS; w++)); do
	writer $w &
	JOB_PIDS+=($!)
done
reader &
JOB_PIDS+=($!)
cycler &
JOB_PIDS+=($!)

# The kthread enters the original function on hold 1 (and stays there
# until hold 0) only while it is unpatched: then a patching transition
# stalls until forced or reversed. Held three half-seconds in four, so that
# force and signal find a transition open often enough to act on.
hold=0
holds=0
while ((SECONDS - begin < BUDGET)) && [[ ! -e $STOP && ! -s $FAILURES ]]; do
	new_hold=$((RANDOM % 4 != 0))
	if ((new_hold != hold)); then
		hold=$new_hold
		echo $hold >"$PARAMS/hold"
		((hold)) && ((holds++))
	fi
	sleep 0.5
done
stop_jobs
elapsed=$((SECONDS - begin))
echo 0 >"$PARAMS/hold"

# Released, the kthread lets any transition left open complete.
for ((i = 0; i < 600; i++)); do
	settle
	[[ "$state" == patched || "$state" == gone ]] && break
	sleep 0.1
done
final=$state
[[ "$final" == gone && -e /sys/module/$MOD_LIVEPATCH ]] && final="gone, module loaded"
[[ "$final" == gone ]] && final="gone, module removed"

declare -A totals=()
while read -r file outcome n; do
	totals["$file $outcome"]=$((${totals["$file $outcome"]:-0} + n))
done < <(cat "$WORK"/counts.* 2>/dev/null)
read -r reads vanished passes 2>/dev/null <"$WORK/reader"
read -r loads 2>/dev/null <"$WORK/loads"
if ((HAVE_SIGNAL)); then
	signal_summary="signal $(total signal ok) ok/$(total signal refused) refused/$(total signal gone) gone"
else
	signal_summary="signal: no such file on this core, not written"
fi
echo "writes: enabled $(total enabled ok) ok/$(total enabled refused) refused/$(total enabled gone) gone," \
     "force $(total force ok) ok/$(total force refused) refused/$(total force gone) gone/$(total force skipped) not tried (enabled not 1)," \
     "$signal_summary; loads: ${loads:-?} of at most $CYCLES in ${elapsed}s; hold set: $holds;" \
     "patch_state reads: ${reads:-?} in ${passes:-?} passes (${vanished:-?} vanished pids); final: $final;" \
     "EACCES on open: $(($(total enabled denied) + $(total force denied) + $(total signal denied)))"

[[ -z "$STUCK" ]] || fail "background jobs still running 60 s after being told to stop:$STUCK"
if [[ -s $FAILURES ]]; then
	fail "$(wc -l <"$FAILURES") failures, the first ones:\n$(head -n 10 "$FAILURES")"
fi
[[ "$state" == patched || "$state" == gone ]] ||
	fail "the patch did not settle in 60 s: $state"
expect_value "$PARAMS/flagged" 0
for f in /proc/[0-9]*/task/[0-9]*/patch_state; do
	v=
	IFS= read -r v 2>/dev/null <"$f" || [[ -n "$v" ]] || continue
	[[ "$v" == -1 ]] || fail "$f reads '$v' with no transition in progress"
done

# Lower bounds: each patch but the last was freed by a successful write of
# 0 to enabled, and the patching transitions lasted long enough to be
# forced and signalled.
((${loads:-0} >= MIN_LOADS)) || die "only ${loads:-0} loads of the patch module, expected $MIN_LOADS at least"
(($(total enabled ok) > 0)) || die "no write to enabled succeeded"
# The debug kernel's writers manage a handful of writes in all, and a write
# to force or signal succeeds only while a transition is open: there the
# counts are printed, not bounded (one run had no successful signal).
if ! on_debug_kernel; then
	(($(total force ok) > 0)) || die "no write to force succeeded"
	((HAVE_SIGNAL == 0 || $(total signal ok) > 0)) || die "no write to signal succeeded"
fi
((${reads:-0} > 0)) || die "no patch_state was read"

if [[ "$state" == patched ]]; then
	disable_lp $MOD_LIVEPATCH
fi
if [[ -e /sys/module/$MOD_LIVEPATCH ]]; then
	# Never forced while unpatching, the module must be put and removable.
	for ((i = 0; i < 100; i++)); do
		read_value /sys/module/$MOD_LIVEPATCH/refcnt
		[[ "$value" == 0 ]] && break
		sleep 0.1
	done
	[[ "$value" == 0 ]] || fail "$MOD_LIVEPATCH's refcnt stays '$value' after its patch was freed"
	unload_lp $MOD_LIVEPATCH
fi
unload_mod $MOD_TARGET
expect_no_stack_dump

exit 0
