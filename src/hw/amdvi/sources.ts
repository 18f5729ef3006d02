/**
 * Which DeviceID an AMD-Vi unit sees for a request, by where the request comes from — the platform wiring that
 * the IVHD device entries describe (spec #48882 section 5.2.2.2):
 *   - a PCI function's requests carry its requester id, unless an alias entry (42h alias select, or 43h alias
 *     start of range … 04h end of range) names another DeviceID for it: a bridge that takes ownership of the
 *     requests of the devices behind it;
 *   - an IOAPIC or an HPET is no PCI function: its interrupt messages carry the DeviceID of its special-device
 *     entry (48h; byte 4 the IOAPIC id or HPET number, bytes 5–6 the DeviceID, byte 7 variety 1 IOAPIC, 2 HPET).
 * That DeviceID selects the device table entry, and so the interrupt remapping table, the interrupt is looked up
 * in (2.2.5). Linux 6.1 reads the same entries (init_iommu_from_acpi into amd_iommu_alias_table, ioapic_map and
 * hpet_map) and installs an interrupt remapping table at the DeviceID and at its alias.
 */
import type { IvhdBlock, IvhdEntry } from "../../acpi/ivrs-format.js";
import { parsePciAddress, requesterId } from "../../core/pci.js";

export type RequestSource =
  | { kind: "pci"; rid: number }
  | { kind: "ioapic"; id: number }
  | { kind: "hpet"; id: number };

export interface SourceIds {
  /** IOAPIC id (the special entry's handle) → DeviceID. */
  readonly ioapic: ReadonlyMap<number, number>;
  /** HPET number → DeviceID. */
  readonly hpet: ReadonlyMap<number, number>;
  /** Requester id → the DeviceID its requests carry instead. */
  readonly alias: ReadonlyMap<number, number>;
}

/**
 * QEMU 7.2's q35 with amd-iommu: its IVRS has one special entry, IOAPIC 0 at 00:14.0 (the DeviceID QEMU also
 * gives every interrupt that arrives without a requester id, AMDVI_IOAPIC_SB_DEVID), no HPET and no aliases.
 */
export const QEMU_SOURCE_IDS: SourceIds = { ioapic: new Map([[0, 0xa0]]), hpet: new Map(), alias: new Map() };

function rid(text: string): number {
  return requesterId(parsePciAddress(text));
}

/**
 * The wiring an IVHD block's device entries describe. Entries are read in order, as Linux does: an alias range
 * starts at 43h and ends at the next 04h; a 04h without a start, or a range never ended, adds nothing.
 */
export function sourceIdsFromIvhd(block: Pick<IvhdBlock, "entries">): SourceIds {
  const ioapic = new Map<number, number>();
  const hpet = new Map<number, number>();
  const alias = new Map<number, number>();
  let range: { start: number; alias: number | null } | null = null;
  for (const e of block.entries as readonly IvhdEntry[]) {
    switch (e.type) {
      case "special":
        if (e.variety === 1) ioapic.set(e.handle, rid(e.sourceId));
        else if (e.variety === 2) hpet.set(e.handle, rid(e.sourceId));
        break;
      case "alias-select":
        alias.set(rid(e.deviceId), rid(e.aliasId));
        break;
      case "alias-range-start":
        range = { start: rid(e.deviceId), alias: rid(e.aliasId) };
        break;
      case "range-start":
      case "extended-range-start":
        range = { start: rid(e.deviceId), alias: null };
        break;
      case "range-end":
        if (range !== null && range.alias !== null) {
          for (let d = range.start; d <= rid(e.deviceId); d++) alias.set(d, range.alias);
        }
        range = null;
        break;
      default:
        break;
    }
  }
  return { ioapic, hpet, alias };
}

/**
 * The DeviceID a request from `source` carries, or null when the wiring has no such IOAPIC or HPET. An alias
 * is not followed further: the bridge that takes ownership is the one the entry names.
 */
export function deviceIdOf(ids: SourceIds, source: RequestSource): number | null {
  switch (source.kind) {
    case "pci": {
      const r = source.rid & 0xffff;
      return ids.alias.get(r) ?? r;
    }
    case "ioapic":
      return ids.ioapic.get(source.id) ?? null;
    case "hpet":
      return ids.hpet.get(source.id) ?? null;
  }
}
