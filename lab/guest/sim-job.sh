#!/bin/sh
# Runs inside a lab guest (chroot /host, the guest's own /proc /sys /dev): captures what the simulated kernel is
# compared with, without starting node (a boot is then only the kernel's own time). Results go to $LAB_OUT as
# capture.tar, holding capture/:
#   cmdline.txt, dmesg.txt              /proc/cmdline and the kernel log
#   pci/BDF.config                      each PCI function's configuration space (4 KiB through ECAM)
#   groups/N/{devices,type,reserved_regions}   /sys/kernel/iommu_groups/N, devices as one name a line
#   DMAR                                the firmware's DMAR table, when there is one
#   cap, ecap                           the first remapping unit's CAP and ECAP as sysfs shows them (hex)
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
tar -C /tmp -cf "$OUT/capture.tar" capture
echo "captured $(ls "$C/pci" | wc -l) functions, $(ls "$C/groups" | wc -l) groups"
exit 0
