#!/usr/bin/env bash
# Fetch the kpatch tool (the `kpatch` script of Debian's kpatch package)
# into the cache, once, the way fetch-tree.sh fetches the kernel: through a
# private apt configuration that leaves the machine's untouched. Prints the
# path of the script on stdout.
#
# From sid, not trixie: trixie's 0.9.10 has no "Currently livepatched
# functions" table in `kpatch list` (it came with 0.9.11, and reads each
# patch's stack_order file).
set -euo pipefail

# shellcheck source=harness/private-apt.sh
. "$(dirname "$0")/private-apt.sh"

cache=${KLP_CACHE:-$HOME/.cache/klp-rs}
suite=sid
apt_dir=$cache/apt-kpatch-$suite
out=$cache/kpatch
mkdir -p "$out"

if [[ -x $out/kpatch && "$(cat "$out/VERSION" 2>/dev/null)" == "kpatch $suite "* ]]; then
	echo "$out/kpatch"
	exit 0
fi

private_apt "$apt_dir" "$suite"
echo "fetch-kpatch: updating private package list from $apt_host $suite" >&2
apt-get "${apt_opts[@]}" update -qq >&2
version=$(private_apt_newest kpatch)
[[ -n $version ]] || { echo "fetch-kpatch: $suite offers no kpatch package" >&2; exit 1; }
work=$(mktemp -d "$cache/fetch-kpatch.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get "${apt_opts[@]}" download "kpatch=$version" >&2)
dpkg -x "$work"/kpatch_*.deb "$work/pkg"
script=$(find "$work/pkg" -type f -name kpatch -path '*bin/*' | head -n1)
[[ -n $script ]] || { echo "fetch-kpatch: no kpatch script in the package" >&2; exit 1; }
# Into place at once: a guest image being made may be copying it.
install -m 755 "$script" "$out/kpatch.tmp"
mv -f "$out/kpatch.tmp" "$out/kpatch"
echo "kpatch $suite $version" >"$out/VERSION"
echo "fetch-kpatch: kpatch $version ($suite)" >&2
echo "$out/kpatch"
