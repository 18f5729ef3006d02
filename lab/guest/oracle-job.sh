#!/bin/sh
# Runs inside the VT-d oracle guest: makes the devices do DMA through the emulated IOMMU (reads from the NVMe
# disk, brings every network link up and runs a DHCP exchange on it), notes the IOMMU groups and interrupts, then
# creates $LAB_OUT/dma-done and waits: the host pauses the machine there and dumps its memory over QMP.
set -u
OUT="${LAB_OUT:-/tmp/out}"
log() { echo "oracle-job: $*"; }

for dev in /dev/nvme0n1 /dev/nvme0; do [ -e "$dev" ] && log "found $dev"; done
if [ -b /dev/nvme0n1 ]; then
  dd if=/dev/nvme0n1 of=/dev/null bs=64k count=64 iflag=direct 2>&1 | tail -n 1
  dd if=/dev/nvme0n1 of=/dev/null bs=1M count=8 2>&1 | tail -n 1
  head -c 32 /dev/nvme0n1 | tr -c '[:print:]' '.'
  echo
else
  log "no NVMe namespace"
fi

ifaces=""
for n in /sys/class/net/*; do
  i="${n##*/}"
  [ "$i" = lo ] && continue
  ifaces="$ifaces $i"
  busybox ip link set "$i" up
done
log "links up:$ifaces"
sleep 3
for i in $ifaces; do
  if busybox udhcpc -i "$i" -n -q -f -t 3 -T 1 -s /bin/true >/tmp/udhcpc.$i 2>&1; then
    log "$i: DHCP lease offered"
  else
    log "$i: no DHCP lease"
  fi
  drv="$(basename "$(readlink "/sys/class/net/$i/device/driver")")"
  bdf="$(basename "$(readlink "/sys/class/net/$i/device")")"
  log "$i = $bdf ($drv)"
done
# A second read after the network work, so the NVMe queues have fresh mappings at the pause.
[ -b /dev/nvme0n1 ] && dd if=/dev/nvme0n1 of=/dev/null bs=4k count=16 skip=100 iflag=direct 2>/dev/null

cat /proc/interrupts >"$OUT/interrupts.txt"
for d in /sys/bus/pci/devices/*; do
  echo "${d##*/} group=$(basename "$(readlink "$d/iommu_group" 2>/dev/null)" 2>/dev/null) driver=$(basename "$(readlink "$d/driver" 2>/dev/null)" 2>/dev/null)"
done >"$OUT/devices.txt"
cat /sys/kernel/iommu_groups/*/type | sort | uniq -c >"$OUT/group-types.txt"
cat /sys/class/iommu/dmar0/intel-iommu/cap /sys/class/iommu/dmar0/intel-iommu/ecap >"$OUT/guest-cap-ecap.txt" 2>/dev/null
dmesg >"$OUT/dmesg.txt"
# The IOMMU's own PCI function (class 0806h) and the firmware's IVRS, for the AMD-Vi oracle.
for d in /sys/bus/pci/devices/*; do
  [ "$(cat "$d/class")" = 0x080600 ] && cat "$d/config" >"$OUT/iommu-config-${d##*/}.bin"
done
[ -r /sys/firmware/acpi/tables/IVRS ] && cat /sys/firmware/acpi/tables/IVRS >"$OUT/ivrs.bin"
cat /sys/class/iommu/ivhd*/amd-iommu/cap >"$OUT/amd-iommu-cap.txt" 2>/dev/null
sync
touch "$OUT/dma-done"
log "DMA done; waiting for the host to pause the machine"
sleep 600
