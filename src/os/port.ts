/**
 * Everything the simulated kernel may touch on a machine, and nothing more: what a CPU reaches. RAM through
 * loads and stores, MMIO registers, PCI configuration space (ECAM), the firmware's tables, and the interrupt
 * messages that arrive. The kernel never sees a remapping unit, a topology or a device object: it learns the
 * machine the way Linux does, by parsing ACPI tables and reading registers and configuration space.
 */
import type { PhysicalMemory } from "../core/memory.js";

export interface E820Range {
  base: number;
  /** Last byte, inclusive. */
  end: number;
  type: "usable" | "reserved";
}

/** An interrupt message as the local APICs receive it (address/data of an MSI, or a unit's event). */
export interface IncomingInterrupt {
  addressLo: number;
  addressHi: number;
  data: number;
}

export interface MachinePort {
  /** RAM, as the CPU loads and stores it. */
  readonly memory: PhysicalMemory;
  mmioRead(addr: number, size: 4 | 8): bigint;
  mmioRead32(addr: number): number;
  mmioWrite(addr: number, size: 4 | 8, value: number | bigint): void;
  /** Configuration space of requester id `rid` (bus << 8 | devfn); absent functions read all ones. */
  configRead(rid: number, offset: number, size: 1 | 2 | 4): number;
  configWrite(rid: number, offset: number, size: 1 | 2 | 4, value: number): void;
  readonly firmware: {
    e820: E820Range[];
    /** ACPI tables by signature. */
    acpi: Record<string, Uint8Array>;
    /** The MADT's CPUs and IOAPICs. */
    cpus: { apicId: number }[];
    ioapics: { id: number; base: number }[];
  };
  /** Installs the handler interrupt messages are delivered to. */
  onInterrupt(handler: (m: IncomingInterrupt) => void): void;
}
