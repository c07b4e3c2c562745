#!/usr/bin/env bash
# Install everything the klp-rs build and guest need. Idempotent: when all is
# present it only checks and returns in a second or two.
set -euo pipefail

BINDGEN_VERSION=0.73.2
# shellcheck source=harness/toolchain.sh
. "$(dirname "$0")/toolchain.sh"
V=$KLP_LLVM_VERSION

apt_pkgs=(
	# LLVM 22 is in bookworm-security, which the machine's sources list.
	"clang-$V" "lld-$V" "llvm-$V" "libclang-$V-dev"
	qemu-system-x86 busybox-static bash-static
	flex bison bc libelf-dev libssl-dev cpio kmod xz-utils zstd
	rsync dwarves make gcc libc6-dev python3
	coreutils util-linux procps diffutils gawk grep sed findutils
	patchutils
	# The kpatch tool's needs in the guest (test-klp-rs-kpatch.sh).
	binutils bsdextrautils
)
# make bench plots its results.
[[ ${1:-} == bench ]] && apt_pkgs+=(gnuplot-nox)
# klp-build's objtool needs xxhash for its function checksums.
[[ ${1:-} == klp-build ]] && apt_pkgs+=(libxxhash-dev)

missing=()
for p in "${apt_pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "deps: installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# Never remove what the machine has: QEMU's other packages (qemu-utils
	# and the like) already installed move to the version QEMU comes in
	# with them, and should apt still want to remove anything, it stops
	# instead (--no-remove).
	along=()
	while read -r p; do
		along+=("$p")
	done < <(dpkg-query -W -f='${Package} ${Status}\n' 'qemu-*' 2>/dev/null |
		awk '$NF == "installed" { print $1 }')
	apt-get install -y -qq --no-install-recommends --no-remove "${missing[@]}" "${along[@]}"
fi

export PATH="$HOME/.cargo/bin:$PATH"
if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
	echo "deps: adding rustup component rust-src"
	rustup component add rust-src
fi

# The host workspace's crates (klpctl's), so that the build can stay
# --offline. Quick when they are already there.
(cd "$(dirname "$0")/.." && cargo fetch --locked --quiet)

if ! bindgen --version 2>/dev/null | grep -q " $BINDGEN_VERSION\$"; then
	echo "deps: installing bindgen-cli $BINDGEN_VERSION"
	cargo install --locked --version "$BINDGEN_VERSION" bindgen-cli
fi
