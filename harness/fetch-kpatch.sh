#!/usr/bin/env bash
# Fetch the kpatch tool (the `kpatch` script of Debian trixie's kpatch
# package) into the cache, once, the way fetch-tree.sh fetches the kernel:
# through a private apt configuration that leaves the machine's untouched.
# Prints the path of the script on stdout.
set -euo pipefail

cache=${KLP_CACHE:-$HOME/.cache/klp-rs}
apt_dir=$cache/apt-kpatch
out=$cache/kpatch
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$out"

if [[ -x $out/kpatch && -f $out/VERSION ]]; then
	echo "$out/kpatch"
	exit 0
fi

host=$(grep -rhoE 'https?://[^ ]*debian\.org/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
	grep -v security | head -n1 || true)
host=${host%/}
[[ -n $host ]] || host=http://deb.debian.org/debian
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $host trixie main" >"$apt_dir/sources.list"
apt_opts=(
	-o Dir::Etc::sourcelist="$apt_dir/sources.list"
	-o Dir::Etc::sourceparts=-
	-o Dir::State::Lists="$apt_dir/lists"
	-o Dir::Cache::Archives="$apt_dir/archives"
	-o APT::Get::List-Cleanup=0
	-o Debug::NoLocking=1
)
echo "fetch-kpatch: updating private package list from $host trixie" >&2
apt-get "${apt_opts[@]}" update -qq >&2
version=$(apt-cache "${apt_opts[@]}" madison kpatch 2>/dev/null |
	awk -F'|' '{gsub(/ /,"",$2); print $2}' | sort -V | tail -n1)
[[ -n $version ]] || { echo "fetch-kpatch: trixie offers no kpatch package" >&2; exit 1; }
work=$(mktemp -d "$cache/fetch-kpatch.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get "${apt_opts[@]}" download "kpatch=$version" >&2)
dpkg -x "$work"/kpatch_*.deb "$work/pkg"
script=$(find "$work/pkg" -type f -name kpatch -path '*bin/*' | head -n1)
[[ -n $script ]] || { echo "fetch-kpatch: no kpatch script in the package" >&2; exit 1; }
install -m 755 "$script" "$out/kpatch"
echo "kpatch $version" >"$out/VERSION"
echo "fetch-kpatch: kpatch $version" >&2
echo "$out/kpatch"
