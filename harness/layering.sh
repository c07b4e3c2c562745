#!/usr/bin/env bash
# The core's layering: every `crate::<module>` path in kernel/livepatch/ and
# arch/x86/livepatch/ must name a module of a lower layer than its file's,
# as the crate root lists them, apart from the back-edges listed there (each
# of which must still exist). Prints "PASS layering ..." or "FAIL layering why".
#
#   layering.sh [REPO]
set -uo pipefail
repo=${1:-$(cd "$(dirname "$0")/.." && pwd)}
root=$repo/kernel/livepatch/klp.rs

block=$(sed -n '/<!-- layers -->/,/<!-- \/layers -->/p' "$root")
[[ -n $block ]] || { echo "FAIL layering no layer list in $root"; exit 0; }

declare -A layer
while read -r n rest; do
	for m in $(grep -oE '`[a-z_0-9]+`' <<<"$rest" | tr -d '`'); do layer[$m]=$n; done
done < <(sed -nE 's|^//! ([0-9]+)\. (.*)$|\1 \2|p' <<<"$block")

declare -A allowed=()
while read -r from to; do allowed["$from $to"]=1; done < <(
	tr '\n' ' ' <<<"$block" | grep -oE '`[a-z_0-9]+ -> [a-z_0-9]+`' | tr -d '`' | sed 's/ -> / /')

fail=() edges=0
declare -A seen
for f in "$repo"/kernel/livepatch/*.rs "$repo"/arch/x86/livepatch/*.rs; do
	m=$(basename "$f" .rs)
	[[ $f == */arch/x86/livepatch/* ]] && m=arch
	[[ $m == klp ]] && continue
	[[ -n ${layer[$m]:-} ]] || { fail+=("$m is in no layer"); continue; }
	# `crate::name` not followed by `!` (macros are not modules), and the
	# names inside `use crate::{...}`.
	uses=$( { grep -oE 'crate::[a-z_0-9]+[^a-z_0-9!]' "$f" | sed -E 's/crate::([a-z_0-9]+).*/\1/'
		grep -oE 'crate::\{[^}]*\}' "$f" | sed -E 's/crate::\{//; s/\}//; s/,/\n/g' |
			sed -E 's/^[[:space:]]*([a-z_0-9]+).*/\1/'; } | sort -u)
	for u in $uses; do
		[[ $u == "$m" || $u == self || $u == super ]] && continue
		[[ -n ${layer[$u]:-} ]] || { fail+=("$m uses $u, which is in no layer"); continue; }
		edges=$((edges + 1))
		seen["$m $u"]=1
		if ((layer[$u] >= layer[$m])) && [[ -z ${allowed["$m $u"]:-} ]]; then
			fail+=("$m (layer ${layer[$m]}) uses $u (layer ${layer[$u]})")
		fi
	done
done
for e in ${allowed[*]:+"${!allowed[@]}"}; do
	[[ -n ${seen[$e]:-} ]] || fail+=("listed back-edge ${e/ / -> } no longer exists: take it off the list")
done

if ((${#fail[@]})); then
	echo "FAIL layering $(IFS=';'; echo "${fail[*]}")"
else
	left=0
	[[ -n ${allowed[*]:-} ]] && left=${#allowed[@]}
	echo "PASS layering ($edges edges between ${#layer[@]} modules; back-edges left: $left)"
fi
