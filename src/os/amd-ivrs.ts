/**
 * What the AMD-Vi driver takes from the IVRS, after Linux 6.1 (drivers/iommu/amd/init.c):
 * - get_highest_supported_ivhd_type: the type of the last IVHD (types up to 40h) describing the same IOMMU as the
 *   first one; only IVHDs of that type are used (a firmware lists each IOMMU once per type it supports).
 * - find_last_devid_from_ivhd: the highest device id named by select, range-end, alias-select and
 *   extended-select entries (0xffff with an "all" entry); it sizes the device table.
 * - init_iommu_from_acpi: device entries, walked in order, give each device id its IOMMU (rlookup), its DTE
 *   setting byte, and its alias (alias entries and alias ranges: alias_table[devid] = the alias, which gets the
 *   same IOMMU and settings); special entries name the device id of an IOAPIC or HPET. The IOMMU's own id is
 *   then removed from its lookup ("not considered to translate itself").
 * - get_global_efr: the EFR/EFR2 images all type 11h/40h IVHDs agree on (0 when none has them).
 * - init_memory_definitions: IVMD blocks with the unity or exclusion flag become unity ranges for a device range.
 */
import { IVHD_TYPE_10H, IVHD_TYPE_40H, IVMD_TYPE_ALL, IVMD_TYPE_RANGE } from "../acpi/ivrs-format.js";
import { decodeIvrs, type IvhdBlock, type IvhdEntry, type IvmdBlock, type IvrsTable } from "../acpi/ivrs.js";

/** ACPI_IVHD_TYPE_MAX_SUPPORTED */
const IVHD_TYPE_MAX_SUPPORTED = IVHD_TYPE_40H;
const LAST_BDF_ALL = 0xffff;

export interface IvrsDevice {
  /** Index of the IVHD (IOMMU) translating it. */
  unit: number;
  /** DTE setting byte of its device entry. */
  setting: number;
}

export interface UnityRange {
  first: number;
  last: number;
  start: number;
  /** Last byte, inclusive. */
  end: number;
  read: boolean;
  write: boolean;
}

export interface AmdIvrs {
  table: IvrsTable;
  /** The IVHD type the driver uses. */
  ivhdType: number;
  ivhds: IvhdBlock[];
  lastBdf: number;
  /** rlookup_table and the DTE setting byte, by device id. */
  devices: Map<number, IvrsDevice>;
  /** alias_table: device id → the id its requests carry (only ids with an alias). */
  aliases: Map<number, number>;
  /** IOAPIC id → device id; HPET number → device id (special entries). */
  ioapics: Map<number, number>;
  hpets: Map<number, number>;
  unity: UnityRange[];
  efr: bigint;
  efr2: bigint;
}

const devid = (bdf: string): number => {
  const m = /^([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i.exec(bdf);
  if (m === null) return 0;
  return (parseInt(m[1]!, 16) << 8) | (parseInt(m[2]!, 16) << 3) | parseInt(m[3]!, 16);
};

export function highestIvhdType(t: IvrsTable): number {
  const first = t.blocks[0];
  if (first === undefined) return 0;
  const firstId = "deviceId" in first ? first.deviceId : "";
  let last = first.typeCode;
  for (const b of t.blocks) {
    if (b.typeCode > IVHD_TYPE_MAX_SUPPORTED) break;
    if ("deviceId" in b && b.deviceId === firstId) last = b.typeCode;
  }
  return last;
}

function lastDevid(ivhds: IvhdBlock[]): number {
  let last = 0;
  for (const h of ivhds) {
    for (const e of h.entries) {
      if (e.type === "all") return LAST_BDF_ALL;
      if (e.type === "select" || e.type === "range-end" || e.type === "alias-select" || e.type === "extended-select") last = Math.max(last, devid(e.deviceId));
    }
  }
  return last;
}

/** init_iommu_from_acpi for one IVHD. */
function walkEntries(r: AmdIvrs, unit: number, entries: IvhdEntry[]): void {
  const set = (id: number, setting: number): void => {
    r.devices.set(id, { unit, setting });
  };
  let start = 0;
  let setting = 0;
  let aliasTo: number | null = null;
  for (const e of entries) {
    const id = devid(e.deviceId);
    const flags = e.dataSetting.raw;
    switch (e.type) {
      case "all":
        for (let d = 0; d <= r.lastBdf; d++) set(d, flags);
        break;
      case "select":
      case "extended-select":
        set(id, flags);
        break;
      case "range-start":
      case "extended-range-start":
        [start, setting, aliasTo] = [id, flags, null];
        break;
      case "alias-select": {
        const to = devid(e.aliasId);
        set(id, flags);
        set(to, flags);
        r.aliases.set(id, to);
        break;
      }
      case "alias-range-start":
        [start, setting, aliasTo] = [id, flags, devid(e.aliasId)];
        break;
      case "range-end":
        for (let d = start; d <= id; d++) {
          if (aliasTo !== null) r.aliases.set(d, aliasTo);
          set(d, setting);
        }
        if (aliasTo !== null) set(aliasTo, setting);
        break;
      case "special": {
        const src = devid(e.sourceId);
        if (e.varietyName === "ioapic") r.ioapics.set(e.handle, src);
        else if (e.varietyName === "hpet") r.hpets.set(e.handle, src);
        set(src, flags);
        break;
      }
      default:
        break;
    }
  }
}

function unityRanges(blocks: IvmdBlock[], lastBdf: number): UnityRange[] {
  const out: UnityRange[] = [];
  for (const m of blocks) {
    if (!m.flags.unity && !m.flags.exclusionRange) continue;
    const first = m.typeCode === IVMD_TYPE_ALL ? 0 : devid(m.deviceId);
    const last = m.typeCode === IVMD_TYPE_ALL ? lastBdf : m.typeCode === IVMD_TYPE_RANGE ? m.auxData : first;
    const start = Math.ceil(Number(BigInt(m.start)) / 4096) * 4096;
    const length = Math.ceil(Number(BigInt(m.memoryLength)) / 4096) * 4096;
    // Exclusion ranges are treated as read/write unity maps (init_unity_map_range).
    const rw = m.flags.exclusionRange;
    out.push({ first, last, start, end: start + length - 1, read: rw || m.flags.read, write: rw || m.flags.write });
  }
  return out;
}

/** get_global_efr: the IVHD EFR images if every 11h/40h IVHD carries the same, else 0. */
function globalEfr(ivhds: IvhdBlock[]): { efr: bigint; efr2: bigint } {
  let efr: bigint | null = null;
  let efr2: bigint | null = null;
  for (const h of ivhds) {
    if (h.typeCode === IVHD_TYPE_10H) continue;
    const e = BigInt(h.efr ?? "0");
    const e2 = BigInt(h.efr2 ?? "0");
    if (efr === null) [efr, efr2] = [e, e2];
    else if (efr !== e || efr2 !== e2) return { efr: 0n, efr2: 0n };
  }
  return { efr: efr ?? 0n, efr2: efr2 ?? 0n };
}

/** Parses the IVRS; throws (with the decoder's message) on a table that cannot be decoded. */
export function parseAmdIvrs(bytes: Uint8Array): AmdIvrs {
  const table = decodeIvrs(bytes);
  const ivhdType = highestIvhdType(table);
  const ivhds = table.blocks.filter((b): b is IvhdBlock => b.type === "IVHD" && b.typeCode === ivhdType);
  const lastBdf = lastDevid(ivhds);
  const r: AmdIvrs = {
    table, ivhdType, ivhds, lastBdf, devices: new Map(), aliases: new Map(), ioapics: new Map(), hpets: new Map(),
    unity: unityRanges(table.blocks.filter((b): b is IvmdBlock => b.type === "IVMD"), lastBdf), ...globalEfr(ivhds),
  };
  ivhds.forEach((h, i) => {
    walkEntries(r, i, h.entries);
    // The IVHD lists the IOMMU itself; Linux makes sure it is not considered to translate itself.
    r.devices.delete(devid(h.deviceId));
  });
  return r;
}

export const ivrsDevid = devid;
