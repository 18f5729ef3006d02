#!/usr/bin/env python3
"""What VFIO itself says about devices on vfio-pci, asked through its ioctls (linux/vfio.h) inside a lab guest.

  vfio-probe.py reset BDF...    per device: the RESET flag of VFIO_DEVICE_GET_INFO (vfio-pci could reset the
                                function by itself when it opened it) and the devices a bus or slot reset would
                                also reset (VFIO_DEVICE_GET_PCI_HOT_RESET_INFO), or the error when there is none
  vfio-probe.py map BDF BYTES   VFIO_IOMMU_MAP_DMA of BYTES of anonymous memory for the device's group: the pinned
                                pages are charged to this process's RLIMIT_MEMLOCK unless it has CAP_IPC_LOCK

One JSON object per line on stdout. Every device must be bound to vfio-pci and its group viable.
"""
import ctypes
import errno
import fcntl
import json
import mmap
import os
import struct
import sys

# _IO(';', 100 + n): VFIO's ioctls carry no size or direction bits.
def _vfio(n):
    return (ord(";") << 8) | (100 + n)

GET_API_VERSION = _vfio(0)
SET_IOMMU = _vfio(2)
GROUP_GET_STATUS = _vfio(3)
GROUP_SET_CONTAINER = _vfio(4)
GROUP_GET_DEVICE_FD = _vfio(6)
DEVICE_GET_INFO = _vfio(7)
DEVICE_GET_PCI_HOT_RESET_INFO = _vfio(12)
IOMMU_MAP_DMA = _vfio(13)
IOMMU_UNMAP_DMA = _vfio(14)
TYPE1V2_IOMMU = 3
GROUP_FLAGS_VIABLE = 1
DEVICE_FLAGS_RESET = 1
DMA_MAP_READ_WRITE = 3


def group_of(bdf):
    return os.path.basename(os.readlink(f"/sys/bus/pci/devices/{bdf}/iommu_group"))


def open_device(bdf):
    """(container, group, device) file descriptors; the group in a new type1v2 container."""
    container = os.open("/dev/vfio/vfio", os.O_RDWR)
    fcntl.ioctl(container, GET_API_VERSION)
    group = os.open(f"/dev/vfio/{group_of(bdf)}", os.O_RDWR)
    status = bytearray(struct.pack("II", 8, 0))
    fcntl.ioctl(group, GROUP_GET_STATUS, status, True)
    if not struct.unpack("II", status)[1] & GROUP_FLAGS_VIABLE:
        raise OSError(errno.EPERM, f"group {group_of(bdf)} is not viable")
    fcntl.ioctl(group, GROUP_SET_CONTAINER, struct.pack("i", container))
    fcntl.ioctl(container, SET_IOMMU, TYPE1V2_IOMMU)
    device = fcntl.ioctl(group, GROUP_GET_DEVICE_FD, bytearray(bdf.encode() + b"\0"), True)
    return container, group, device


def hot_reset_set(device):
    """The BDFs a hot (bus or slot) reset of the device resets, or (None, errno name)."""
    n = 64
    buf = bytearray(struct.pack("III", 12 + 8 * n, 0, 0) + bytes(8 * n))
    try:
        fcntl.ioctl(device, DEVICE_GET_PCI_HOT_RESET_INFO, buf, True)
    except OSError as e:
        return None, errno.errorcode.get(e.errno, str(e.errno))
    count = struct.unpack_from("III", buf)[2]
    out = []
    for i in range(count):
        _group, seg, bus, devfn = struct.unpack_from("IHBB", buf, 12 + 8 * i)
        out.append(f"{seg:04x}:{bus:02x}:{devfn >> 3:02x}.{devfn & 7}")
    return sorted(out), None


def probe_reset(bdf):
    try:
        container, group, device = open_device(bdf)
    except OSError as e:
        return {"bdf": bdf, "error": f"{errno.errorcode.get(e.errno, e.errno)}: {e.strerror}"}
    info = bytearray(struct.pack("IIII", 16, 0, 0, 0))
    fcntl.ioctl(device, DEVICE_GET_INFO, info, True)
    flags = struct.unpack("IIII", info)[1]
    devices, why = hot_reset_set(device)
    for fd in (device, group, container):
        os.close(fd)
    return {"bdf": bdf, "resetFlag": bool(flags & DEVICE_FLAGS_RESET), "hotReset": devices, "hotResetError": why}


def memlock_soft():
    with open("/proc/self/limits") as f:
        for line in f:
            if line.startswith("Max locked memory"):
                return line.split()[3]
    return None


def cap_ipc_lock():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool((int(line.split()[1], 16) >> 14) & 1)
    return None


def probe_map(bdf, size):
    out = {"bdf": bdf, "bytes": size, "memlock": memlock_soft(), "capIpcLock": cap_ipc_lock()}
    try:
        container, group, device = open_device(bdf)
    except OSError as e:
        return {**out, "error": f"{errno.errorcode.get(e.errno, e.errno)}: {e.strerror}"}
    mem = mmap.mmap(-1, size)
    vaddr = ctypes.addressof(ctypes.c_char.from_buffer(mem))
    try:
        fcntl.ioctl(container, IOMMU_MAP_DMA, struct.pack("IIQQQ", 32, DMA_MAP_READ_WRITE, vaddr, 0, size))
        out["mapped"] = True
    except OSError as e:
        out["mapped"] = False
        out["errno"] = errno.errorcode.get(e.errno, str(e.errno))
    if out["mapped"]:
        fcntl.ioctl(container, IOMMU_UNMAP_DMA, bytearray(struct.pack("IIQQ", 24, 0, 0, size)), True)
    for fd in (device, group, container):
        os.close(fd)
    return out


def main(argv):
    if len(argv) >= 2 and argv[0] == "reset":
        for bdf in argv[1:]:
            print(json.dumps(probe_reset(bdf)), flush=True)
        return 0
    if len(argv) == 3 and argv[0] == "map":
        print(json.dumps(probe_map(argv[1], int(argv[2]))), flush=True)
        return 0
    print("usage: vfio-probe.py reset BDF... | map BDF BYTES", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
