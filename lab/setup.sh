#!/usr/bin/env bash
# Prepares everything the lab needs, idempotently:
#   1. the Debian packages (qemu-system-x86, busybox-static, cpio, kmod, …), installed when missing (as root);
#   2. Debian's Linux 6.1 kernel image (the one linux-image-amd64 depends on), downloaded once and extracted into
#      lab/work/kernel/ with depmod run over its modules;
#   3. the initramfs lab/work/initrd.gz (lab/mkinitrd.sh), rebuilt when the kernel or the builder changes;
#   4. the project's dist/ (npm run build), so the guest can run the `iommu` CLI from this tree.
#
# Usage: bash lab/setup.sh [--no-build]
# Environment: LAB_KERNEL_PACKAGE=linux-image-6.1.0-NN-amd64 pins the kernel package (default: what
# linux-image-amd64 depends on); IOMMU_KIT_APT_UPDATED=1 says the package lists are fresh.
set -euo pipefail

LAB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$LAB/.." && pwd)"
WORK="$LAB/work"
BUILD=1
[[ "${1:-}" == "--no-build" ]] && BUILD=0

log() { printf 'lab setup: %s\n' "$*" >&2; }
die() { printf 'lab setup: error: %s\n' "$*" >&2; exit 1; }

mkdir -p "$WORK"

# ---- 1. packages -------------------------------------------------------------------------------------------
# package name -> a file it provides that the lab uses
declare -A NEED=(
  [qemu-system-x86]=/usr/bin/qemu-system-x86_64
  [busybox-static]=/bin/busybox
  [cpio]=/usr/bin/cpio
  [kmod]=/usr/bin/kmod
  [gzip]=/usr/bin/gzip
  [python3-minimal]=/usr/bin/python3 # lab/guest/vfio-probe.py (doctor scenario g)
  [util-linux]=/usr/bin/setpriv      # the doctor without CAP_IPC_LOCK (doctor scenario g)
)
missing=()
for pkg in "${!NEED[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  if [[ "$status" != "install ok installed" || ! -e "${NEED[$pkg]}" ]]; then missing+=("$pkg"); fi
done
# busybox (dynamic) also provides /bin/busybox; the initramfs needs the static one.
if [[ -e /bin/busybox && "$(ldd /bin/busybox 2>&1 || true)" != *"not a dynamic executable"* ]]; then
  [[ " ${missing[*]} " == *" busybox-static "* ]] || missing+=(busybox-static)
fi
# IOMMU_KIT_APT_UPDATED=1: the caller (e.g. .ci/run) has just run apt-get update; do not run it again.
APT_UPDATED=0
[[ "${IOMMU_KIT_APT_UPDATED:-}" == 1 ]] && APT_UPDATED=1
apt_update_once() {
  if [[ $APT_UPDATED -eq 0 ]]; then
    log "apt-get update"
    apt-get update -qq >&2 || die "apt-get update failed"
    APT_UPDATED=1
  fi
}
if [[ ${#missing[@]} -gt 0 ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    die "missing packages: ${missing[*]}
  install them with:  sudo apt-get update && sudo apt-get install -y ${missing[*]}"
  fi
  apt_update_once
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
    || die "apt-get install ${missing[*]} failed"
fi
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found after install"

# ---- 2. kernel ---------------------------------------------------------------------------------------------
KDIR="$WORK/kernel"
if [[ -f "$KDIR/VERSION" && -f "$KDIR/PACKAGE" ]]; then
  KVER="$(cat "$KDIR/VERSION")"
  log "kernel $KVER cached ($(cat "$KDIR/PACKAGE"))"
else
  PKG="${LAB_KERNEL_PACKAGE:-}"
  if [[ -z "$PKG" ]]; then
    PKG="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
    if [[ -z "$PKG" ]]; then
      [[ $(id -u) -eq 0 ]] || die "apt-cache does not know linux-image-amd64; run 'sudo apt-get update' first"
      apt_update_once
      PKG="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
    fi
    [[ -n "$PKG" ]] || die "cannot find the kernel image package that linux-image-amd64 depends on"
  fi
  mkdir -p "$WORK/debs"
  deb="$(ls "$WORK/debs/${PKG}_"*.deb 2>/dev/null | head -n1 || true)"
  if [[ -z "$deb" ]]; then
    log "downloading $PKG"
    (cd "$WORK/debs" && apt-get download "$PKG" 2>&1 | grep -v 'unsandboxed as root' >&2) || true
    deb="$(ls "$WORK/debs/${PKG}_"*.deb 2>/dev/null | head -n1 || true)"
    [[ -n "$deb" ]] || die "apt-get download $PKG failed (is Debian's apt reachable? try 'apt-get update')"
  fi
  log "extracting $(basename "$deb")"
  rm -rf "$KDIR.tmp"
  mkdir -p "$KDIR.tmp"
  dpkg-deb -x "$deb" "$KDIR.tmp"
  KVER="$(ls "$KDIR.tmp/lib/modules" | head -n1)"
  [[ -n "$KVER" && -f "$KDIR.tmp/boot/vmlinuz-$KVER" ]] || die "$deb holds no boot/vmlinuz-* and lib/modules/*"
  depmod -b "$KDIR.tmp" "$KVER"
  echo "$KVER" >"$KDIR.tmp/VERSION"
  echo "$PKG $(dpkg-deb -f "$deb" Version)" >"$KDIR.tmp/PACKAGE"
  rm -rf "$KDIR"
  mv "$KDIR.tmp" "$KDIR"
  log "kernel $KVER ready in lab/work/kernel"
fi
[[ -f "$KDIR/boot/vmlinuz-$KVER" ]] || die "lab/work/kernel is incomplete; delete it and rerun"

# ---- 3. initramfs ------------------------------------------------------------------------------------------
INITRD="$WORK/initrd.gz"
STAMP="$WORK/initrd.stamp"
want_stamp="$KVER $(sha256sum "$LAB/mkinitrd.sh" "$LAB/guest/init" | sha256sum | cut -c1-16)"
if [[ -f "$INITRD" && -f "$STAMP" && "$(cat "$STAMP")" == "$want_stamp" ]]; then
  log "initramfs up to date"
else
  bash "$LAB/mkinitrd.sh" "$KDIR" "$KVER" "$INITRD"
  echo "$want_stamp" >"$STAMP"
fi

# ---- 4. the project's dist/ --------------------------------------------------------------------------------
if [[ $BUILD -eq 1 ]]; then
  log "npm run build"
  if ! (cd "$REPO" && npm run -s build >"$WORK/build.log" 2>&1); then
    tail -n 30 "$WORK/build.log" >&2
    if [[ -f "$REPO/dist/cli/main.js" ]]; then
      log "warning: the build reported errors (lab/work/build.log); continuing with the emitted dist/"
    else
      die "the build failed and dist/cli/main.js does not exist (lab/work/build.log)"
    fi
  fi
fi
log "ready: kernel $KVER, $(du -h "$INITRD" | cut -f1) initramfs"
