#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# klp-rs: livepatch relocations (.klp.rela sections, SHN_LIVEPATCH symbols),
# as host/klp-convert writes them into the test_klp_rs_reloc_* modules.
#
# - a patch reaching unexported vmlinux symbols, relocated when it loads
# - a patch reaching a module's static symbols, relocated when that module
#   loads after the patch (and again when it comes back), or when the patch
#   loads after the module
# - malformed livepatch symbols and a symbol of an unknown object: refused
#   at load with nothing left behind
#
# Every check here holds on the upstream C core too; the refusals only
# klp-rs makes are in test-klp-rs-reloc-strict.sh.

. $(dirname $0)/functions.sh
. $(dirname $0)/klp-rs-functions.sh

MOD_VMLINUX=test_klp_rs_reloc_vmlinux
MOD_TARGET=test_klp_rs_reloc_target
MOD_PATCH=test_klp_rs_reloc_mod_patch
# Any plain module: it takes the place the target leaves.
MOD_FILLER=test_klp_callbacks_mod
PROBE=/sys/module/$MOD_TARGET/parameters/probe

setup_config

# kallsyms_addr(name, [module]) - set addr to the address /proc/kallsyms
# gives name (in module, else in vmlinux), which must be there exactly once
function kallsyms_addr() {
	if [[ -n "$2" ]]; then
		addr=$(awk -v n="$1" -v m="[$2]" '$3 == n && $4 == m { print $1 }' /proc/kallsyms)
	else
		addr=$(awk -v n="$1" '$3 == n && NF == 3 { print $1 }' /proc/kallsyms)
	fi
	[[ "$addr" =~ ^[0-9a-f]{16}$ && "$addr" != 0000000000000000 ]] ||
		fail "/proc/kallsyms gives '$1'${2:+ in $2} as '$addr', expected one real address"
}

# expect_file(path, value) - path must read value
function expect_file() {
	local got
	got=$(cat "$1" 2>&1)
	[[ "$got" == "$2" ]] || fail "$1 reads '$got', expected '$2'"
}

# expect_target(secret) - the patched target shows what it computes through
# its relocations: the secret, target_mix(7) and the secret's address
function expect_target() {
	kallsyms_addr test_klp_rs_reloc_target_secret $MOD_TARGET
	expect_file $PROBE "patched secret=$1 mix=$((700 + $1)) addr=$addr"
	expect_file $SYSFS_KLP_DIR/$MOD_PATCH/$MOD_TARGET/patched 1
}

# log_load(patch), log_disable(patch) - the kernel log of load_lp and
# disable_lp of patch
log_load() {
	echo "% insmod test_modules/$1.ko
livepatch: enabling patch '$1'
livepatch: '$1': initializing patching transition
livepatch: '$1': starting patching transition
livepatch: '$1': completing patching transition
livepatch: '$1': patching complete"
}
log_disable() {
	echo "% echo 0 > $SYSFS_KLP_DIR/$1/enabled
livepatch: '$1': initializing unpatching transition
livepatch: '$1': starting unpatching transition
livepatch: '$1': completing unpatching transition
livepatch: '$1': unpatching complete"
}


# - the replacement of cmdline_proc_show() shows saved_command_line's
#   address as its code, its data and a call of kallsyms_lookup_name() see
#   it, and its value: all must agree with /proc/kallsyms and the original
#   /proc/cmdline

start_test "relocations against unexported vmlinux symbols"

cmdline=$(cat /proc/cmdline)
kallsyms_addr saved_command_line
load_lp $MOD_VMLINUX
expect_file /proc/cmdline "$MOD_VMLINUX: code=$addr data=$addr lookup=$addr value=$cmdline"
disable_lp $MOD_VMLINUX
unload_lp $MOD_VMLINUX
expect_file /proc/cmdline "$cmdline"

check_result "$(log_load $MOD_VMLINUX)
$(log_disable $MOD_VMLINUX)
% rmmod $MOD_VMLINUX"


# - the patch comes first; the target's relocations are written as it
#   loads, cleared as it goes (else writing them again would find the old
#   values and fail), and written again as it comes back, with a new
#   secret and at a new address (another module takes its old place)
# - disabled, the patch leaves the target's own function in place

start_test "relocations against a module loaded after the patch"

load_lp $MOD_PATCH
expect_file $SYSFS_KLP_DIR/$MOD_PATCH/$MOD_TARGET/patched 0
load_mod $MOD_TARGET secret=5
expect_target 5
first=$addr
unload_mod $MOD_TARGET
expect_file $SYSFS_KLP_DIR/$MOD_PATCH/$MOD_TARGET/patched 0
load_mod $MOD_FILLER
load_mod $MOD_TARGET secret=9
expect_target 9
[[ "$addr" != "$first" ]] ||
	fail "$MOD_TARGET came back at the same address: the test proves less"
unload_mod $MOD_FILLER
disable_lp $MOD_PATCH
expect_file $PROBE original
unload_lp $MOD_PATCH
unload_mod $MOD_TARGET

check_result "$(log_load $MOD_PATCH)
% insmod test_modules/$MOD_TARGET.ko secret=5
livepatch: applying patch '$MOD_PATCH' to loading module '$MOD_TARGET'
% rmmod $MOD_TARGET
livepatch: reverting patch '$MOD_PATCH' on unloading module '$MOD_TARGET'
% insmod test_modules/$MOD_FILLER.ko
$MOD_FILLER: ${MOD_FILLER}_init
% insmod test_modules/$MOD_TARGET.ko secret=9
livepatch: applying patch '$MOD_PATCH' to loading module '$MOD_TARGET'
% rmmod $MOD_FILLER
$MOD_FILLER: ${MOD_FILLER}_exit
$(log_disable $MOD_PATCH)
% rmmod $MOD_PATCH
% rmmod $MOD_TARGET"


# - the target comes first; the patch's relocations are written as the
#   patch is enabled

start_test "relocations against a module loaded before the patch"

load_mod $MOD_TARGET secret=3
expect_file $PROBE original
load_lp $MOD_PATCH
expect_target 3
disable_lp $MOD_PATCH
expect_file $PROBE original
unload_lp $MOD_PATCH
unload_mod $MOD_TARGET

check_result "% insmod test_modules/$MOD_TARGET.ko secret=3
$(log_load $MOD_PATCH)
$(log_disable $MOD_PATCH)
% rmmod $MOD_PATCH
% rmmod $MOD_TARGET"


# - a .klp.rela.vmlinux section whose symbol has no position, a position
#   that is no number, or no symbol name: the module loader's call to
#   klp_apply_section_relocs() refuses it with -EINVAL

start_test "malformed livepatch symbol names"

refuse test_klp_rs_reloc_bad_nopos "Invalid parameters"
refuse test_klp_rs_reloc_bad_pos "Invalid parameters"
refuse test_klp_rs_reloc_bad_empty "Invalid parameters"

check_result "% insmod test_modules/test_klp_rs_reloc_bad_nopos.ko
livepatch: symbol .klp.sym.vmlinux.saved_command_line has an incorrectly formatted name
insmod: ERROR: could not insert module test_modules/test_klp_rs_reloc_bad_nopos.ko: Invalid parameters
% insmod test_modules/test_klp_rs_reloc_bad_pos.ko
livepatch: symbol .klp.sym.vmlinux.saved_command_line,x has an incorrectly formatted name
insmod: ERROR: could not insert module test_modules/test_klp_rs_reloc_bad_pos.ko: Invalid parameters
% insmod test_modules/test_klp_rs_reloc_bad_empty.ko
livepatch: symbol .klp.sym.vmlinux.,0 has an incorrectly formatted name
insmod: ERROR: could not insert module test_modules/test_klp_rs_reloc_bad_empty.ko: Invalid parameters"


# - .klp.sym.no_such_mod.foo,0 in a .klp.rela.vmlinux section: looked up
#   in a module that is not there, it is not found

start_test "a symbol of an unknown object"

refuse test_klp_rs_reloc_bad_symobj "Invalid parameters"

check_result "% insmod test_modules/test_klp_rs_reloc_bad_symobj.ko
livepatch: symbol 'foo' not found in symbol table
insmod: ERROR: could not insert module test_modules/test_klp_rs_reloc_bad_symobj.ko: Invalid parameters"

exit 0
