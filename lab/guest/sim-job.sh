#!/bin/sh
# Runs inside a lab guest (chroot /host, the guest's own /proc /sys /dev): captures what the simulated kernel is
# compared with, without starting node (a boot is then only the kernel's own time). Results go to $LAB_OUT as
# capture.tar, holding capture/:
#   cmdline.txt, dmesg.txt              /proc/cmdline and the kernel log
#   pci/BDF.config                      each PCI function's configuration space (4 KiB through ECAM)
#   groups/N/{devices,type,reserved_regions}   /sys/kernel/iommu_groups/N, devices as one name a line
#   DMAR                                the firmware's DMAR table, when there is one
#   cap, ecap                           the first remapping unit's CAP and ECAP as sysfs shows them (hex)
#   IVRS                                the firmware's IVRS table, when there is one
#   amd-cap, amd-features, amd-devices  the first AMD-Vi unit's capability header and EFR as sysfs shows them,
#                                       and the functions it translates for (one name a line)
#   status.json, status.err, status.rc  `iommu status --json` of the repository at $REPO, when $REPO is set
#                                       (node starts only then)
set -u
OUT="${LAB_OUT:-/tmp/out}"
C=/tmp/capture
mkdir -p "$C/pci" "$C/groups"
cat /proc/cmdline >"$C/cmdline.txt"
dmesg >"$C/dmesg.txt"
for d in /sys/bus/pci/devices/*; do
  [ -e "$d/config" ] || continue
  cat "$d/config" >"$C/pci/$(basename "$d").config"
done
for g in /sys/kernel/iommu_groups/*; do
  [ -d "$g" ] || continue
  n="$C/groups/$(basename "$g")"
  mkdir -p "$n"
  ls "$g/devices" >"$n/devices"
  cat "$g/type" >"$n/type" 2>/dev/null
  cat "$g/reserved_regions" >"$n/reserved_regions" 2>/dev/null
done
[ -e /sys/firmware/acpi/tables/DMAR ] && cat /sys/firmware/acpi/tables/DMAR >"$C/DMAR"
for f in cap ecap; do
  [ -e "/sys/class/iommu/dmar0/intel-iommu/$f" ] && cat "/sys/class/iommu/dmar0/intel-iommu/$f" >"$C/$f"
done
[ -e /sys/firmware/acpi/tables/IVRS ] && cat /sys/firmware/acpi/tables/IVRS >"$C/IVRS"
A=/sys/class/iommu/ivhd0
if [ -d "$A/amd-iommu" ]; then
  cat "$A/amd-iommu/cap" >"$C/amd-cap"
  cat "$A/amd-iommu/features" >"$C/amd-features"
  ls "$A/devices" >"$C/amd-devices"
fi
if [ -n "${REPO:-}" ]; then
  node "$REPO/bin/iommu.js" status --json >"$C/status.json" 2>"$C/status.err"
  echo $? >"$C/status.rc"
fi
tar -C /tmp -cf "$OUT/capture.tar" capture
echo "captured $(ls "$C/pci" | wc -l) functions, $(ls "$C/groups" | wc -l) groups"
exit 0
