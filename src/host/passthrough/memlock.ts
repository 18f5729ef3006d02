/**
 * Locked memory. VFIO pins every page of guest RAM it maps for DMA (VFIO_IOMMU_MAP_DMA) and charges the pages to
 * the process's RLIMIT_MEMLOCK; past the limit the ioctl fails with ENOMEM and QEMU stops ("vfio_dma_map(…) =
 * -12 (Cannot allocate memory)"). A process with CAP_IPC_LOCK (root) is not limited; libvirt raises the limit
 * of the QEMU it starts by itself; a QEMU started by hand inherits the limit of the shell that starts it.
 *
 * Read from the examined process: /proc/self/limits ("Max locked memory  SOFT  HARD  bytes"), CapEff in
 * /proc/self/status (CAP_IPC_LOCK is capability 14), and MemTotal in /proc/meminfo.
 */
import type { SysfsView } from "../sysfs-view.js";
import { readTextSafe, type TextRead } from "./read.js";

export const CAP_IPC_LOCK = 14;

export interface Memlock {
  limits: TextRead;
  /** Soft and hard limits in bytes; null for unlimited. Undefined when /proc/self/limits gave no answer. */
  soft?: number | null;
  hard?: number | null;
  /** The process has CAP_IPC_LOCK; null when /proc/self/status could not be read. */
  ipcLock: boolean | null;
  /** Host RAM in bytes; null when unknown. */
  memTotal: number | null;
}

const limitValue = (t: string): number | null => (t === "unlimited" ? null : Number(t));

export function parseMemlockLimit(text: string): { soft: number | null; hard: number | null } | null {
  const m = /^Max locked memory\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(text);
  return m ? { soft: limitValue(m[1] ?? ""), hard: limitValue(m[2] ?? "") } : null;
}

export function readMemlock(view: SysfsView): Memlock {
  const limits = readTextSafe(view, "/proc/self/limits");
  const parsed = limits.text === null ? null : parseMemlockLimit(limits.text);
  const status = readTextSafe(view, "/proc/self/status").text;
  const capEff = status === null ? null : /^CapEff:\s*([0-9a-fA-F]+)/m.exec(status)?.[1];
  const ipcLock = capEff === undefined || capEff === null ? null : ((BigInt("0x" + capEff) >> BigInt(CAP_IPC_LOCK)) & 1n) === 1n;
  const mem = readTextSafe(view, "/proc/meminfo").text;
  const kb = mem === null ? undefined : /^MemTotal:\s+(\d+)\s*kB/m.exec(mem)?.[1];
  return {
    limits,
    ...(parsed === null ? {} : { soft: parsed.soft, hard: parsed.hard }),
    ipcLock,
    memTotal: kb === undefined ? null : Number(kb) * 1024,
  };
}

/** Parses a size such as 16G, 16GiB, 8192M, 4096 (MiB when no unit: QEMU's -m convention). */
export function parseSize(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) return null;
  const unit = (m[2] ?? "").toLowerCase();
  const mult = { "": 1024 ** 2, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[unit] ?? 1;
  return Math.round(Number(m[1]) * mult);
}
