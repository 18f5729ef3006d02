/**
 * What the firmware says about the IOMMU: the ACPI DMAR (Intel VT-d) or IVRS (AMD-Vi) table the kernel exposes
 * in /sys/firmware/acpi/tables, decoded with the same codec `iommu acpi decode` uses. A table that cannot be
 * read or decoded is a problem in the report, never a crash.
 *
 * DMAR flags (VT-d spec §8.1): bit 0 INTR_REMAP (the platform supports interrupt remapping; Linux will not
 * enable it without this bit), bit 1 X2APIC_OPT_OUT (firmware asks the OS not to use x2APIC), bit 2
 * DMA_CTRL_PLATFORM_OPT_IN (the firmware protected memory from DMA before boot and asks the OS to keep the
 * IOMMU on: Linux then enables it even without intel_iommu=on).
 */
import { decodeTable } from "../acpi/index.js";
import type { DmarTable } from "../acpi/dmar.js";
import type { IvhdBlock, IvrsTable } from "../acpi/ivrs.js";
import { IommuError } from "../core/errors.js";
import { parseHexBig } from "../core/hex.js";
import { problem, type Problem } from "./problem.js";
import type { SysfsView } from "./sysfs-view.js";
import { decodeAmdEfr, type AmdEfrSummary } from "./vtd-cap.js";

export const ACPI_TABLES_DIR = "/sys/firmware/acpi/tables";

export interface FirmwareUnit {
  kind: "DRHD" | "IVHD";
  segment: number;
  /** MMIO register base, "0x…". */
  registerBase: string;
  /** DRHD: covers every device not named by another unit (INCLUDE_PCI_ALL). */
  includePciAll?: boolean;
  /** IVHD: the IOMMU's own requester id ("00:00.2"), IVHD type ("0x11"), EFR image. */
  deviceId?: string;
  ivhdType?: string;
  efr?: string;
  efrSummary?: AmdEfrSummary;
  /** Number of device scope entries (DRHD) or device entries (IVHD). */
  entries: number;
  /** IOAPICs this unit handles interrupts for (needed for interrupt remapping). */
  ioapics: number;
}

export interface FirmwareInfo {
  /** Which table the firmware publishes; null when neither is present. */
  table: "DMAR" | "IVRS" | null;
  /** Path read, e.g. /sys/firmware/acpi/tables/DMAR. */
  path: string | null;
  /** True when the table was read and decoded. */
  decoded: boolean;
  oemId: string | null;
  oemTableId: string | null;
  revision: number | null;
  /** DMAR: host address width in bits; IVRS: IVinfo PAsize. */
  addressWidth: number | null;
  /** DMAR INTR_REMAP flag; null for IVRS (AMD reports interrupt remapping per IVHD/EFR, not in one flag). */
  interruptRemapping: boolean | null;
  x2apicOptOut: boolean | null;
  dmaControlOptIn: boolean | null;
  /** IVRS IVinfo EFRSup: the IVHD EFR images are valid. */
  efrSupported: boolean | null;
  /** IVRS IVinfo bit 1: the firmware used the IOMMU for pre-boot DMA protection. */
  preBootDmaProtection: boolean | null;
  units: FirmwareUnit[];
  /** Reserved memory regions the firmware declares (DMAR RMRR, IVRS IVMD). */
  reservedRegions: number;
  /** Non-fatal decoder messages (a wrong checksum, for example). */
  warnings: string[];
  problems: Problem[];
}

function empty(): FirmwareInfo {
  return {
    table: null, path: null, decoded: false, oemId: null, oemTableId: null, revision: null, addressWidth: null,
    interruptRemapping: null, x2apicOptOut: null, dmaControlOptIn: null, efrSupported: null,
    preBootDmaProtection: null, units: [], reservedRegions: 0, warnings: [], problems: [],
  };
}

function dmarInfo(info: FirmwareInfo, t: DmarTable): void {
  info.addressWidth = t.hostAddressWidth;
  info.interruptRemapping = t.flags.interruptRemapping;
  info.x2apicOptOut = t.flags.x2apicOptOut;
  info.dmaControlOptIn = t.flags.dmaControlOptIn;
  for (const s of t.structures) {
    if (s.type === "DRHD") {
      info.units.push({
        kind: "DRHD",
        segment: s.segment,
        registerBase: s.registerBase.toLowerCase(),
        includePciAll: s.flags.includePciAll,
        entries: s.scopes.length,
        ioapics: s.scopes.filter((sc) => sc.type === "ioapic").length,
      });
    } else if (s.type === "RMRR") {
      info.reservedRegions++;
    }
  }
}

/**
 * Linux uses one IVHD per IOMMU: of the blocks describing the same IOMMU (10h, 11h, 40h), the highest type it
 * supports. Keep the highest type per (segment, device id).
 */
function pickIvhds(blocks: IvhdBlock[]): IvhdBlock[] {
  const best = new Map<string, IvhdBlock>();
  for (const b of blocks) {
    const key = `${b.segment}:${b.deviceId}`;
    const cur = best.get(key);
    if (cur === undefined || b.typeCode > cur.typeCode) best.set(key, b);
  }
  return [...best.values()];
}

function ivrsInfo(info: FirmwareInfo, t: IvrsTable): void {
  info.addressWidth = t.ivInfo.physicalAddressSize;
  info.efrSupported = t.ivInfo.efrSupported;
  info.preBootDmaProtection = t.ivInfo.dmaRemapSupported;
  const ivhds = t.blocks.filter((b): b is IvhdBlock => b.type === "IVHD");
  for (const b of pickIvhds(ivhds)) {
    const efr = b.efr === undefined ? null : parseHexBig(b.efr);
    info.units.push({
      kind: "IVHD",
      segment: b.segment,
      registerBase: b.baseAddress.toLowerCase(),
      deviceId: b.deviceId,
      ivhdType: `0x${b.typeCode.toString(16)}`,
      ...(efr === null ? {} : { efr: `0x${efr.toString(16)}`, efrSummary: decodeAmdEfr(efr).summary }),
      entries: b.entries.length,
      ioapics: b.entries.filter((e) => e.type === "special" && e.variety === 1).length,
    });
  }
  info.reservedRegions = t.blocks.filter((b) => b.type === "IVMD").length;
}

/** The table file to read: DMAR or IVRS (sysfs names a second copy DMAR1, …; the first is the one Linux uses). */
function findTable(view: SysfsView): { sig: "DMAR" | "IVRS"; path: string } | null {
  for (const sig of ["DMAR", "IVRS"] as const) {
    const path = `${ACPI_TABLES_DIR}/${sig}`;
    if (view.exists(path)) return { sig, path };
  }
  return null;
}

export function readFirmware(view: SysfsView): FirmwareInfo {
  const info = empty();
  const found = findTable(view);
  if (found === null) return info;
  info.table = found.sig;
  info.path = found.path;
  let bytes: Uint8Array | null;
  try {
    bytes = view.readBytes(found.path);
  } catch (e) {
    if (!(e instanceof IommuError)) throw e;
    info.problems.push(problem("FIRMWARE_TABLE_UNREADABLE", "warning",
      `cannot read the ${found.sig} table: ${e.message}`,
      e.code === "PERMISSION_DENIED" ? "run as root (sudo) to include the firmware table in the report" : "check the file"));
    return info;
  }
  if (bytes === null) return info;
  try {
    const { table, warnings } = decodeTable(bytes);
    info.warnings = warnings;
    info.oemId = table.oemId.trim();
    info.oemTableId = table.oemTableId.trim();
    info.revision = table.revision;
    if (table.signature === "DMAR") dmarInfo(info, table);
    else ivrsInfo(info, table);
    info.decoded = true;
  } catch (e) {
    if (!(e instanceof IommuError)) throw e;
    info.problems.push(problem("FIRMWARE_TABLE_INVALID", "warning",
      `the ${found.sig} table in ${found.path} does not decode: ${e.message}`,
      "the firmware table is malformed; the kernel may ignore parts of it. Check for a firmware (BIOS/UEFI) update"));
  }
  return info;
}
