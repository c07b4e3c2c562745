#!/usr/bin/env bash
# The core's layering: every path to a sibling module (`crate::x`, or
# `super::x` from a top-level module, also inside `use crate::{...}`
# groups) in kernel/livepatch/ and arch/x86/livepatch/ must name a module
# of a lower layer than its file's, as the crate root lists them, apart
# from the back-edges listed there (each of which must still exist).
# Comments do not count. Prints "PASS layering ..." or "FAIL layering why".
#
#   layering.sh [REPO]
set -uo pipefail
repo=${1:-$(cd "$(dirname "$0")/.." && pwd)}
root=$repo/kernel/livepatch/klp.rs

block=$(sed -n '/<!-- layers -->/,/<!-- \/layers -->/p' "$root")
[[ -n $block ]] || { echo "FAIL layering no layer list in $root"; exit 0; }

fail=()
declare -A layer=()
# "N. what they are: `a`, `b`": the modules are the names after the last ": ".
while read -r n rest; do
	for m in $(sed 's/.*: //' <<<"$rest" | grep -oE '`[a-z_0-9]+`' | tr -d '`'); do
		[[ -n ${layer[$m]:-} ]] && fail+=("$m is listed in two layers")
		layer[$m]=$n
	done
done < <(sed -nE 's|^//! ([0-9]+)\. (.*)$|\1 \2|p' <<<"$block")

declare -A allowed=()
while read -r from to; do [[ -n $from ]] && allowed["$from $to"]=1; done < <(
	tr '\n' ' ' <<<"$block" | grep -oE 'Back-edges still to remove:[^.]*' |
		grep -oE '`[a-z_0-9]+ -> [a-z_0-9]+`' | tr -d '`' | sed 's/ -> / /')

# The sibling modules a file names: comments dropped, the file joined into
# one line (paths and `use` groups may span lines), then `crate::x` and
# `super::x` (from a top-level file), and the top-level names of each
# `use crate::{...}` group, nested braces and all.
uses_of() { # file top-level(0/1)
	sed -E 's|//.*$||' "$1" | tr '\n' ' ' | sed -E 's/[[:space:]]*::[[:space:]]*/::/g' |
		awk -v top="$2" '{
			s = $0
			while (match(s, /(crate|super)::[a-z_0-9{]/)) {
				kw = substr(s, RSTART, 5)
				rest = substr(s, RSTART + RLENGTH - 1)
				s = substr(s, RSTART + RLENGTH)
				if (kw == "super" && !top) continue
				if (substr(rest, 1, 1) != "{") {
					match(rest, /^[a-z_0-9]+/); name = substr(rest, 1, RLENGTH)
					after = substr(rest, RLENGTH + 1, 1)
					if (after != "!") print name
					continue
				}
				# A group: the names at depth 1.
				depth = 0; word = ""; want = 1
				for (i = 1; i <= length(rest); i++) {
					c = substr(rest, i, 1)
					if (c == "{") { depth++; if (depth == 1) { want = 1; word = "" } ; continue }
					if (c == "}") { if (depth == 1 && want && word != "") print word; depth--; if (depth == 0) break; continue }
					if (depth != 1) continue
					if (c ~ /[a-z_0-9]/) { if (want) word = word c; continue }
					if (c == ",") { if (want && word != "") print word; word = ""; want = 1; continue }
					if (c == ":" ) { if (want && word != "") print word; word = ""; want = 0; continue }
					if (c ~ /[[:space:]]/) continue
					if (want && word != "") { print word; want = 0 }
					word = ""
				}
			}
		}' | sort -u
}

edges=0
declare -A seen=()
for f in "$repo"/kernel/livepatch/*.rs "$repo"/kernel/livepatch/*/*.rs "$repo"/arch/x86/livepatch/*.rs; do
	m=$(basename "$f" .rs)
	top=1
	[[ $f == */arch/x86/livepatch/* ]] && { m=arch; top=0; }
	# A submodule's file (`structs/kobject.rs`) belongs to its parent's layer;
	# its `super::` names the parent itself.
	[[ $f == */kernel/livepatch/*/*.rs ]] && { m=$(basename "$(dirname "$f")"); top=0; }
	[[ $m == klp ]] && continue
	[[ -n ${layer[$m]:-} ]] || { fail+=("$m is in no layer"); continue; }
	for u in $(uses_of "$f" "$top"); do
		[[ $u == "$m" || $u == self || $u == super || $u == crate ]] && continue
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

left=0
[[ -n ${allowed[*]:-} ]] && left=${#allowed[@]}
if ((${#fail[@]})); then
	echo "FAIL layering $(IFS=';'; echo "${fail[*]}")"
else
	echo "PASS layering ($edges edges between ${#layer[@]} modules; back-edges left: $left)"
fi
