#!/usr/bin/env bash
# Make the working kernel tree: pristine 7.3 + the repository's kernel-tree
# folders + patches/*.patch (in order) - the files listed in patches/REMOVE.
#
#   overlay.sh PRISTINE WORKTREE
#
# The wanted content of every managed file is first assembled in a staging
# folder, then copied into WORKTREE only where it differs, so untouched files
# keep their timestamps and the kernel build stays incremental. Files managed
# by an earlier run that are no longer managed go back to pristine.
set -euo pipefail

pristine=$1
work=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
overlay_dirs=(kernel arch rust samples tools/testing Documentation)

if [[ ! -d $work/kernel/livepatch ]]; then
	echo "overlay: creating working tree $work" >&2
	rm -rf "$work.tmp"
	cp -a "$pristine" "$work.tmp"
	mv "$work.tmp" "$work"
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/klp-stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT

for d in "${overlay_dirs[@]}"; do
	[[ -d $repo/$d ]] || continue
	mkdir -p "$stage/$(dirname "$d")"
	cp -a "$repo/$d" "$stage/$d"
done

# klp-rs's own Kconfig options, which kernel/livepatch/Kconfig sources
# (patches/).
mkdir -p "$stage/kernel/livepatch"
cp "$repo/Kconfig" "$stage/kernel/livepatch/Kconfig.klp-rs"

shopt -s nullglob
for p in "$repo"/patches/*.patch; do
	# Bring the pristine version of each file the patch touches into staging.
	while read -r f; do
		f=${f#*/}
		[[ -e $stage/$f || ! -e $pristine/$f ]] && continue
		mkdir -p "$stage/$(dirname "$f")"
		cp -a "$pristine/$f" "$stage/$f"
	done < <(lsdiff --strip=0 "$p" | sed 's#^[ab]/#x/#')
	patch -s -p1 -d "$stage" --no-backup-if-mismatch <"$p" ||
		{ echo "overlay: $p does not apply" >&2; exit 1; }
done

removed=()
if [[ -f $repo/patches/REMOVE ]]; then
	while read -r f; do
		[[ -z $f || $f == \#* ]] && continue
		removed+=("$f")
		rm -f "$stage/$f"
	done <"$repo/patches/REMOVE"
fi

(cd "$stage" && find . -type f -printf '%P\n' | sort) >"$stage.manifest"
manifest_old=$work/.klp-overlay-manifest
touch "$manifest_old"

changed=0
# Managed files: copy only those whose content differs.
while read -r f; do
	if ! cmp -s "$stage/$f" "$work/$f"; then
		mkdir -p "$(dirname "$work/$f")"
		cp "$stage/$f" "$work/$f"
		chmod --reference="$stage/$f" "$work/$f"
		changed=$((changed + 1))
	fi
done <"$stage.manifest"

# Files no longer managed (and not removed on purpose): back to pristine.
while read -r f; do
	[[ -z $f ]] && continue
	grep -qxF "$f" "$stage.manifest" && continue
	printf '%s\n' "${removed[@]}" | grep -qxF "$f" && continue
	if [[ -e $pristine/$f ]]; then
		cmp -s "$pristine/$f" "$work/$f" || { cp "$pristine/$f" "$work/$f"; changed=$((changed + 1)); }
	else
		rm -f "$work/$f"
		changed=$((changed + 1))
	fi
done < <(sed 's/^-//' "$manifest_old")

for f in "${removed[@]}"; do
	[[ -e $work/$f ]] && { rm -f "$work/$f"; changed=$((changed + 1)); }
done

{ cat "$stage.manifest"; printf -- '-%s\n' "${removed[@]}"; } | grep -v '^-$' >"$manifest_old" || true
rm -f "$stage.manifest"
echo "overlay: $(wc -l <"$manifest_old") managed files, $changed updated" >&2
