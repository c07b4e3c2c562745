#!/usr/bin/env bash
# Assemble the guest initramfs for one build flavour.
#
#   mkinitramfs.sh FLAVOUR-DIR OUTPUT.cpio.gz
#
# Contents: busybox-static for the basics, bash-static, the GNU/kmod/procps
# tools whose exact output the upstream selftest scripts compare (with their
# shared libraries), the guest init, the upstream livepatch selftests from the
# build's source tree (unmodified), the project's own selftests, and modules.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
fdir=$1
output=$2
srctree=$(cat "$fdir/srctree")
build=$fdir/build
ext=$fdir/ext
pristine=$("$here/fetch-tree.sh")

root=$(mktemp -d "${TMPDIR:-/tmp}/klp-initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,proc,sys,dev,tmp,run,root,etc,mnt}
# The image's / is mktemp's folder (0700): open it to the tests that run
# commands as a user other than root.
chmod 755 "$root"

cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
	[[ $applet == busybox ]] || ln -sf busybox "$root/bin/$applet"
done
cp /bin/bash-static "$root/bin/bash"
ln -sf bash "$root/bin/sh"

# GNU tools whose messages and options the selftests rely on.
gnu_tools=(
	date stat diff cat cp mv rm ln ls mkdir rmdir sleep seq timeout tr wc head tail
	cut sort uniq id basename dirname realpath readlink env true false printf echo
	tee touch nproc sync uname test expr yes mktemp
	grep sed gawk find xargs dmesg sysctl ps pgrep pkill kill getconf kmod
)
copy_with_libs() { # binary dest
	rm -f "$2"
	cp -L "$1" "$2"
	ldd "$1" 2>/dev/null | grep -oE '/[^ ]+' | while read -r lib; do
		[[ -e $root$lib ]] || { mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; }
	done
}
for t in "${gnu_tools[@]}"; do
	p=$(type -P "$t") || { echo "mkinitramfs: $t not found on the host" >&2; exit 1; }
	copy_with_libs "$p" "$root/bin/$t"
done
ln -sf gawk "$root/bin/awk"
for t in insmod rmmod modinfo lsmod modprobe depmod; do ln -sf kmod "$root/bin/$t"; done
# busybox's own copies would shadow these through /sbin; point them to /bin.
for t in sysctl insmod rmmod modinfo lsmod modprobe depmod; do ln -sf "/bin/$t" "$root/sbin/$t"; done

# Selftests: upstream scripts exactly as the source tree ships them, ours beside.
st=$root/selftests/livepatch
mkdir -p "$st/test_modules"
cp "$pristine"/tools/testing/selftests/livepatch/*.sh "$st/"
if [[ -d $repo/tools/testing/selftests/livepatch ]]; then
	find "$repo/tools/testing/selftests/livepatch" -maxdepth 1 -name '*.sh' -exec cp {} "$st/" \;
fi
chmod +x "$st"/*.sh
find "$ext" -name '*.ko' -exec cp {} "$st/test_modules/" \;
# The Rust livepatch samples, for the selftests that load them, and the C
# sample modules they patch, named as their modules are (functions.sh loads
# test_modules/<module name>.ko).
find "$build/samples/livepatch" -name 'rust_livepatch*.ko' -exec cp {} "$st/test_modules/" \; 2>/dev/null || true
for m in livepatch-shadow-mod livepatch-callbacks-mod livepatch-callbacks-busymod; do
	if [[ -f $build/samples/livepatch/$m.ko ]]; then
		cp "$build/samples/livepatch/$m.ko" "$st/test_modules/${m//-/_}.ko"
	fi
done
cp "$ext/test_klp-call_getpid" "$st/"
cp "$ext/klp_rs_failnth" "$ext/klp_rs_forker" "$ext/klp-core-functions" "$st/"
cp "$ext/klpctl" "$root/bin/klpctl"
# The kpatch tool, unchanged from Debian's package, with the tools it needs
# beyond the selftests' (readelf, column, fmt).
kpatch=$("$here/fetch-kpatch.sh")
cp "$kpatch" "$root/bin/kpatch"
for t in readelf column fmt; do
	p=$(type -P "$t") || { echo "mkinitramfs: $t not found on the host" >&2; exit 1; }
	copy_with_libs "$p" "$root/bin/$t"
done

# Kernel modules of the build (samples and the like), found by name.
mkdir -p "$root/modules"
# (-H: make check-klp-build's build folder is a link to its tree.)
find -H "$build" -path "$build/source" -prune -o -name '*.ko' -print | while read -r ko; do
	cp "$ko" "$root/modules/"
done

cp "$here/guest/init" "$root/init"
cp "$here/guest/demo.sh" "$root/bin/klp-demo"
chmod +x "$root/init" "$root/bin/klp-demo"
echo "root:x:0:0:root:/root:/bin/bash" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"

(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$output.tmp"
mv "$output.tmp" "$output"
