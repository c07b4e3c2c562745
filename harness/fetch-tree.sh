#!/usr/bin/env bash
# Fetch Debian's linux-source-7.3 from trixie-backports into the cache, once.
# Uses a private apt configuration: the machine's own sources stay untouched.
# Prints the path of the pristine source tree on stdout.
set -euo pipefail

# shellcheck source=harness/private-apt.sh
. "$(dirname "$0")/private-apt.sh"

cache=${KLP_CACHE:-$HOME/.cache/klp-rs}
apt_dir=$cache/apt
src_root=$cache/src
mkdir -p "$src_root"

# Already extracted? Reuse it (the version is recorded beside it).
if [[ -f $src_root/TREE && -d $src_root/$(cat "$src_root/TREE")/kernel/livepatch ]]; then
	echo "$src_root/$(cat "$src_root/TREE")"
	exit 0
fi

private_apt "$apt_dir" trixie-backports
echo "fetch-tree: updating private package list from $apt_host trixie-backports" >&2
apt-get "${apt_opts[@]}" update -qq >&2

# Newest 7.3.x the archive offers.
version=$(private_apt_newest linux-source-7.3)
if [[ -z $version ]]; then
	echo "fetch-tree: no linux-source-7.3 package is offered by trixie-backports at $apt_host; cannot build" >&2
	exit 1
fi
echo "fetch-tree: downloading linux-source-7.3 $version" >&2
work=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get "${apt_opts[@]}" download "linux-source-7.3=$version" >&2)
dpkg -x "$work"/linux-source-7.3_*.deb "$work/pkg"
tarball=$(ls "$work"/pkg/usr/src/linux-source-7.3*.tar.* | head -n1)
[[ -f $tarball ]] || { echo "fetch-tree: no tarball in the package" >&2; exit 1; }

# Kbuild and make dislike '~' and ':' in paths: name the folder without them.
name=linux-$(tr '~+:' '___' <<<"$version")
rm -rf "${src_root:?}/$name"
mkdir -p "$work/x"
tar -xf "$tarball" -C "$work/x"
top=$(ls "$work/x")
mv "$work/x/$top" "$src_root/$name"
echo "linux-source-7.3 $version" >"$src_root/$name/.klp-debian-version"
echo "$name" >"$src_root/TREE"
echo "fetch-tree: linux-source-7.3 $version extracted to $src_root/$name" >&2
echo "$src_root/$name"
