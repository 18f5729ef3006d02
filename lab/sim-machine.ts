/**
 * The simulated machine of a captured guest (lab/guest/sim-job.sh): every PCI function as Linux saw it (ids,
 * class, header type, PCI Express port type, ACS, the bus behind a bridge, multifunction), the remapping unit from
 * the firmware's DMAR table (register base, address width, interrupt remapping, device scope), its CAP register
 * (caching mode, CAP.CM bit 7) and its ECAP register (scalable mode, ECAP.SMTS bit 43; QEMU's x-scalable-mode=on),
 * when the kernel registered the unit, 1 GiB of RAM and
 * 2 CPUs as the lab's QEMU command line gives. The simulated kernel then meets the same functions the real one
 * met, so what differs is the kernel's logic, not the machine's description.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeIvrs } from "../src/acpi/ivrs.js";
import type { MachineConfigInput } from "../src/hw/machine-config.js";
import type { PciFunctionInput } from "../src/hw/pci/topology.js";

const PCI_CAP_ID_EXP = 0x10;
const PCI_EXT_CAP_ID_ACS = 0x0d;
/** PCI Express Device/Port Type (PCIe Base 3.0, 7.8.2) -> the simulated topology's function type. */
const PORT_TYPES: Record<number, PciFunctionInput["type"]> = {
  0x0: "endpoint",
  0x1: "endpoint",
  0x4: "root-port",
  0x5: "upstream-port",
  0x6: "downstream-port",
  0x7: "pcie-pci-bridge",
  0x9: "endpoint",
};

export interface CapturedFunction {
  bdf: string;
  vendor: number;
  device: number;
  classCode: number;
  headerType: number;
  pcieType: number | null;
  acs: boolean;
  secondaryBus: number | null;
}

/** Parses one configuration space dump (256 bytes, or 4 KiB with the extended capabilities). */
export function parseConfig(bdf: string, b: Buffer): CapturedFunction {
  if (b.length < 64) throw new Error(`${bdf}: configuration space dump has ${b.length} bytes, fewer than the 64-byte header`);
  const headerType = b.readUInt8(0x0e);
  let pcieType: number | null = null;
  if ((b.readUInt16LE(0x06) & 0x10) !== 0) {
    let p = b.readUInt8(0x34) & 0xfc;
    for (let guard = 0; p >= 0x40 && p + 4 <= b.length && guard < 48; guard++) {
      if (b.readUInt8(p) === PCI_CAP_ID_EXP) pcieType = (b.readUInt16LE(p + 2) >> 4) & 0xf;
      p = b.readUInt8(p + 1) & 0xfc;
    }
  }
  let acs = false;
  if (pcieType !== null && b.length >= 4096) {
    let p = 0x100;
    for (let guard = 0; p >= 0x100 && p + 4 <= b.length && guard < 96; guard++) {
      const h = b.readUInt32LE(p);
      if (h === 0 || h === 0xffffffff) break;
      if ((h & 0xffff) === PCI_EXT_CAP_ID_ACS) acs = true;
      p = (h >>> 20) & 0xffc;
    }
  }
  return {
    bdf,
    vendor: b.readUInt16LE(0),
    device: b.readUInt16LE(2),
    classCode: (b.readUInt8(0x0b) << 16) | (b.readUInt8(0x0a) << 8) | b.readUInt8(0x09),
    headerType,
    pcieType,
    acs,
    secondaryBus: (headerType & 0x7f) === 1 ? b.readUInt8(0x19) : null,
  };
}

const hex = (n: number, w: number) => n.toString(16).padStart(w, "0");

function functionInput(f: CapturedFunction): PciFunctionInput {
  const bdf = f.bdf.replace(/^0000:/, "");
  let type: PciFunctionInput["type"];
  if (bdf === "00:00.0" && f.classCode >>> 8 === 0x0600) type = "host-bridge";
  else if (f.pcieType !== null) {
    const t = PORT_TYPES[f.pcieType];
    if (t === undefined) throw new Error(`${f.bdf}: PCI Express port type ${f.pcieType} has no simulated equivalent`);
    type = t;
  } else type = f.secondaryBus !== null ? "pci-bridge" : "pci";
  const out: PciFunctionInput = {
    bdf,
    type,
    id: `${hex(f.vendor, 4)}:${hex(f.device, 4)}`,
    class: `0x${hex(f.classCode, 6)}`,
    msi: "none",
    multifunction: (f.headerType & 0x80) !== 0,
  };
  if (type !== "host-bridge" && type !== "pci" && type !== "pci-bridge") out.acs = f.acs;
  if (f.secondaryBus !== null) out.secondaryBus = f.secondaryBus;
  return out;
}

export interface DmarFacts {
  base: number;
  hostAddressWidth: number;
  interruptRemapping: boolean;
  /** "all" (INCLUDE_PCI_ALL) or the functions of the device scope. */
  scope: "all" | string[];
}

/** The first DRHD of a DMAR table (ACPI header, then remapping structures; VT-d 8.1, 8.3). */
export function parseDmar(b: Buffer): DmarFacts {
  if (b.length < 48 || b.toString("latin1", 0, 4) !== "DMAR") throw new Error("not a DMAR table");
  const hostAddressWidth = b.readUInt8(36) + 1;
  const interruptRemapping = (b.readUInt8(37) & 1) !== 0;
  for (let p = 48; p + 4 <= b.length; ) {
    const type = b.readUInt16LE(p);
    const len = b.readUInt16LE(p + 2);
    if (len < 4) break;
    if (type === 0) {
      const includeAll = (b.readUInt8(p + 4) & 1) !== 0;
      const base = Number(b.readBigUInt64LE(p + 8));
      const scope: string[] = [];
      for (let s = p + 16; s + 6 <= p + len; ) {
        const sType = b.readUInt8(s);
        const sLen = b.readUInt8(s + 1);
        if (sLen < 6) break;
        if ((sType === 1 || sType === 2) && sLen === 8) {
          scope.push(`${hex(b.readUInt8(s + 5), 2)}:${hex(b.readUInt8(s + 6), 2)}.${b.readUInt8(s + 7)}`);
        }
        s += sLen;
      }
      return { base, hostAddressWidth, interruptRemapping, scope: includeAll ? "all" : scope };
    }
    p += len;
  }
  throw new Error("the DMAR table has no DRHD");
}

/** IVHD special device entry varieties (AMD IOMMU spec 48882, §5.2.2.2: 1 IOAPIC, 2 HPET). */
const SPECIAL_KIND: Record<number, "ioapic" | "hpet"> = { 1: "ioapic", 2: "hpet" };

/**
 * The AMD-Vi units of an IVRS, one per register base (IVHD blocks of several types may describe one unit): the
 * base, the unit's own PCI function (the IVHD's device id; the platform attaches that function, so the captured
 * dump of it is not a device of the config), the IVHD types, the IOAPIC/HPET special entries, and the EFR the
 * guest's sysfs showed (amd-iommu/features is "EFR2:EFR"; without it the configuration's default, QEMU 7.2's).
 * Which functions the unit covers and the alias ranges of conventional buses are what the configuration derives
 * from the PCI layout (scope "all", as QEMU's IVRS lists every function); the sim suite checks that the IVRS the
 * simulated firmware builds from it equals the guest's.
 */
export function ivrsUnits(b: Buffer, features: string | null, interruptRemapping: boolean): { units: Record<string, unknown>[]; unitFunctions: Set<string> } {
  const t = decodeIvrs(b);
  const byBase = new Map<string, Record<string, unknown> & { ivhdTypes: number[]; special: unknown[] }>();
  const unitFunctions = new Set<string>();
  for (const blk of t.blocks) {
    if (blk.type !== "IVHD") continue;
    const known = byBase.get(blk.baseAddress);
    if (known !== undefined) {
      known.ivhdTypes.push(blk.typeCode);
      continue;
    }
    unitFunctions.add(blk.deviceId);
    const special = blk.entries.flatMap((e) => {
      const kind = e.type === "special" && e.variety !== undefined ? SPECIAL_KIND[e.variety] : undefined;
      return kind === undefined || e.type !== "special" ? [] : [{ kind, id: e.handle, bdf: e.sourceId }];
    });
    byBase.set(blk.baseAddress, { type: "amd-vi", base: blk.baseAddress, bdf: blk.deviceId, scope: "all", interruptRemapping, ivhdTypes: [blk.typeCode], special });
  }
  if (byBase.size === 0) throw new Error("the IVRS table has no IVHD block");
  const units = [...byBase.values()];
  const efr = features?.trim().split(":")[1];
  if (efr !== undefined && /^[0-9a-f]+$/i.test(efr) && units[0] !== undefined) units[0].efr = `0x${efr}`;
  return { units, unitFunctions };
}

/**
 * The machine configuration of a capture directory; throws what is missing or unusable. `amdInterruptRemapping`
 * is the AMD-Vi unit's (the IVRS does not say: QEMU's `intremap=on`).
 */
export function captureMachine(dir: string, amdInterruptRemapping = true): MachineConfigInput {
  const pciDir = join(dir, "pci");
  if (!existsSync(pciDir)) throw new Error(`${pciDir} is missing`);
  const files = readdirSync(pciDir).filter((f) => f.endsWith(".config")).sort();
  if (files.length === 0) throw new Error(`${pciDir} has no configuration space dumps`);
  const ivrsFile = join(dir, "IVRS");
  const featuresFile = join(dir, "amd-features");
  const features = existsSync(featuresFile) ? readFileSync(featuresFile, "utf8") : null;
  const amd = existsSync(ivrsFile) ? ivrsUnits(readFileSync(ivrsFile), features, amdInterruptRemapping) : null;
  const devices = files
    .map((f) => parseConfig(f.replace(/\.config$/, ""), readFileSync(join(pciDir, f))))
    .filter((f) => !amd?.unitFunctions.has(f.bdf.replace(/^0000:/, "")))
    .map(functionInput);
  const dmarFile = join(dir, "DMAR");
  const iommus: Record<string, unknown>[] = amd?.units ?? [];
  if (existsSync(dmarFile)) {
    const d = parseDmar(readFileSync(dmarFile));
    if (d.hostAddressWidth !== 39 && d.hostAddressWidth !== 48) throw new Error(`DMAR host address width ${d.hostAddressWidth} is not 39 or 48`);
    const capFile = join(dir, "cap");
    const cap = existsSync(capFile) ? BigInt("0x" + readFileSync(capFile, "utf8").trim()) : 0n;
    const ecapFile = join(dir, "ecap");
    const ecap = existsSync(ecapFile) ? BigInt("0x" + readFileSync(ecapFile, "utf8").trim()) : 0n;
    iommus.push({
      base: `0x${d.base.toString(16)}`,
      scope: d.scope,
      interruptRemapping: d.interruptRemapping,
      awBits: d.hostAddressWidth,
      cachingMode: (cap & 0x80n) !== 0n,
      ...(((ecap >> 43n) & 1n) !== 0n ? { scalableMode: true } : {}),
    });
  }
  return { name: `capture:${dir}`, ram: { size: "1G" }, cpus: 2, devices, iommus };
}
