#!/usr/bin/env bash
# Builds the lab's initramfs: static busybox, lab/guest/init, and the kernel modules the guests need together
# with every dependency modules.dep names (decompressed when the kernel ships them compressed).
#
# Usage: bash lab/mkinitrd.sh KERNEL_ROOT KERNEL_VERSION OUT.gz
#   KERNEL_ROOT is an extracted kernel package (KERNEL_ROOT/lib/modules/KERNEL_VERSION/modules.dep).
# Environment: LAB_MODULES overrides the module list (space separated).
set -euo pipefail

LAB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KROOT="$1"
KVER="$2"
OUT="$3"
MODDIR="$KROOT/lib/modules/$KVER"
# Load order matters: virtio_pci before the 9p transport; the NIC/NVMe drivers before vfio so that the devices
# have their usual drivers at boot.
MODULES="${LAB_MODULES:-virtio_pci virtio_net 9pnet_virtio 9p e1000e e1000 nvme vfio vfio_iommu_type1 vfio_pci}"

die() { printf 'mkinitrd: error: %s\n' "$*" >&2; exit 1; }
[[ -f "$MODDIR/modules.dep" ]] || die "$MODDIR/modules.dep not found (run depmod -b $KROOT $KVER)"
[[ -x /bin/busybox ]] || die "/bin/busybox not found (apt-get install busybox-static)"

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/{bin,sbin,etc,proc,sys,dev,host,tmp,lib/modules/"$KVER"}
cp /bin/busybox "$STAGE/bin/busybox"
install -m 0755 "$LAB/guest/init" "$STAGE/init"

norm() { local n="${1##*/}"; n="${n%%.ko*}"; echo "${n//-/_}"; }

# Every module file named in modules.dep, by normalised name -> "file: deps".
declare -A DEP
while IFS= read -r line; do
  file="${line%%:*}"
  DEP["$(norm "$file")"]="$line"
done <"$MODDIR/modules.dep"

declare -A FILES
for m in $MODULES; do
  key="${m//-/_}"
  line="${DEP[$key]:-}"
  if [[ -z "$line" ]]; then
    if grep -q "/${m}.ko" "$MODDIR/modules.builtin" 2>/dev/null || grep -q "/${key}.ko" "$MODDIR/modules.builtin" 2>/dev/null; then
      continue
    fi
    die "module $m is neither in modules.dep nor built in"
  fi
  for f in ${line/:/}; do FILES["$f"]=1; done
done

for f in "${!FILES[@]}"; do
  dst="$STAGE/lib/modules/$KVER/$f"
  mkdir -p "$(dirname "$dst")"
  case "$f" in
    *.ko) cp "$MODDIR/$f" "$dst" ;;
    *.ko.xz) xz -dc "$MODDIR/$f" >"${dst%.xz}" ;;
    *.ko.zst) zstd -qdc "$MODDIR/$f" >"${dst%.zst}" ;;
    *.ko.gz) gzip -dc "$MODDIR/$f" >"${dst%.gz}" ;;
    *) die "unknown module file type: $f" ;;
  esac
done
for f in modules.builtin modules.builtin.modinfo modules.order; do
  [[ -f "$MODDIR/$f" ]] && cp "$MODDIR/$f" "$STAGE/lib/modules/$KVER/"
done
depmod -b "$STAGE" "$KVER"
echo "$MODULES" >"$STAGE/etc/lab-modules"

mkdir -p "$(dirname "$OUT")"
(cd "$STAGE" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 | gzip -6 >"$OUT.tmp")
mv "$OUT.tmp" "$OUT"
printf 'mkinitrd: %s: %d module files, %s\n' "$OUT" "${#FILES[@]}" "$(du -h "$OUT" | cut -f1)" >&2
