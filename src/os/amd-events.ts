/**
 * The AMD-Vi event log as Linux 6.1 reads it (drivers/iommu/amd/iommu.c amd_iommu_int_thread, iommu_poll_events,
 * iommu_print_event, amd_iommu_report_page_fault): on the unit's interrupt the driver clears the status bits it
 * handles (write 1 to clear), reads every entry from the head to the tail, prints each, zeroes it and moves the
 * head register past it. IO_PAGE_FAULT for a device the driver knows is printed with the device's name
 *   "e1000e 0000:00:02.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0001 address=0x1000 flags=0x0020]"
 * at most DEFAULT_RATELIMIT_BURST (10) times per DEFAULT_RATELIMIT_INTERVAL (5 s) per device; other events are
 * printed against the IOMMU's class device ("iommu ivhd0: AMD-Vi: Event logged [...]").
 *
 * Entry layout from spec/amdvi/events.ts; status bits from spec/amdvi/registers.ts.
 */
import { pciName } from "./pci.js";
import {
  COMMAND_HARDWARE_ERROR,
  DEV_TAB_HARDWARE_ERROR,
  EVENT_BYTES,
  ILLEGAL_COMMAND_ERROR,
  ILLEGAL_DEV_TABLE_ENTRY,
  INVALID_DEVICE_REQUEST,
  IO_PAGE_FAULT,
  IOTLB_INV_TIMEOUT,
  PAGE_TAB_HARDWARE_ERROR,
  decodeEvent,
  eventName,
  type AmdEvent,
} from "../spec/amdvi/events.js";
import { MMIO_EVENT_HEAD, MMIO_EVENT_TAIL, MMIO_STATUS, STATUS_EVENT_LOG_INT, STATUS_EVENT_OVERFLOW } from "../spec/amdvi/registers.js";
import { EVT_BUFFER_SIZE, type AmdDriverContext, type AmdIo, type AmdIommuUnit } from "./amd-unit.js";

const RATELIMIT_INTERVAL_NS = 5e9;
const RATELIMIT_BURST = 10;

/** An event as the driver read it. */
export interface AmdEventRecord extends AmdEvent {
  unit: string;
  /** Name of the event code ("IO_PAGE_FAULT"). */
  name: string;
  address: bigint;
  /** The line printed, or null when rate-limited. */
  logged: string | null;
  /** When the driver read it (the kernel's clock, ns). */
  ns: number;
}

const hx = (n: number | bigint, w = 0): string => n.toString(16).padStart(w, "0");
const bdf = (devid: number): string => pciName(devid);

/** The text of an event (iommu_print_event), without the device prefix. */
export function eventText(e: AmdEvent, address: bigint): string {
  const dev = `device=${bdf(e.deviceId)}`;
  const a = `address=0x${hx(address)}`;
  const f = `flags=0x${hx(e.flags, 4)}`;
  // The IO_PAGE_FAULT and ILLEGAL_DEV_TABLE_ENTRY "pasid" is the domain id field (bits 47:32).
  switch (e.code) {
    case IO_PAGE_FAULT:
      return `Event logged [IO_PAGE_FAULT domain=0x${hx(e.domainId, 4)} ${a} ${f}]`;
    case ILLEGAL_DEV_TABLE_ENTRY:
      return `Event logged [ILLEGAL_DEV_TABLE_ENTRY ${dev} pasid=0x${hx(e.domainId, 5)} ${a} ${f}]`;
    case DEV_TAB_HARDWARE_ERROR:
      return `Event logged [DEV_TAB_HARDWARE_ERROR ${dev} ${a} ${f}]`;
    case PAGE_TAB_HARDWARE_ERROR:
      return `Event logged [PAGE_TAB_HARDWARE_ERROR ${dev} pasid=0x${hx(e.domainId, 4)} ${a} ${f}]`;
    case ILLEGAL_COMMAND_ERROR:
      return `Event logged [ILLEGAL_COMMAND_ERROR ${a}]`;
    case COMMAND_HARDWARE_ERROR:
      return `Event logged [COMMAND_HARDWARE_ERROR ${a} ${f}]`;
    case IOTLB_INV_TIMEOUT:
      return `Event logged [IOTLB_INV_TIMEOUT ${dev} ${a}]`;
    case INVALID_DEVICE_REQUEST:
      return `Event logged [INVALID_DEVICE_REQUEST ${dev} pasid=0x${hx(e.domainId, 5)} ${a} ${f}]`;
    default:
      return `Event logged [UNKNOWN code=0x${hx(e.code)} ${dev} ${a} ${f}]`;
  }
}

export class AmdEventLog {
  readonly records: AmdEventRecord[] = [];
  private readonly limits = new Map<number, { start: number; printed: number }>();

  constructor(
    private readonly ctx: AmdDriverContext,
    private readonly io: AmdIo,
    /** The printed name of a device the driver probed ("e1000e 0000:00:02.0"), or null. */
    private readonly deviceName: (devid: number) => string | null,
  ) {}

  private allowed(devid: number): boolean {
    const now = this.ctx.now();
    const l = this.limits.get(devid);
    if (l === undefined || now - l.start >= RATELIMIT_INTERVAL_NS) {
      this.limits.set(devid, { start: now, printed: 1 });
      return true;
    }
    if (l.printed >= RATELIMIT_BURST) return false;
    l.printed++;
    return true;
  }

  private print(u: AmdIommuUnit, e: AmdEvent, address: bigint): string | null {
    const text = eventText(e, address);
    if (e.code === IO_PAGE_FAULT) {
      const name = this.deviceName(e.deviceId);
      if (name !== null) {
        if (!this.allowed(e.deviceId)) return null;
        const line = `${name}: AMD-Vi: ${text}`;
        this.ctx.log.err(line);
        return line;
      }
      const line = `AMD-Vi: ${text.replace("IO_PAGE_FAULT ", `IO_PAGE_FAULT device=${bdf(e.deviceId)} `)}`;
      this.ctx.log.err(line);
      return line;
    }
    const line = `iommu ${u.name}: AMD-Vi: ${text}`;
    this.ctx.log.err(line);
    return line;
  }

  /** iommu_poll_events: every entry between head and tail, printed and recorded; the head moved past them. */
  poll(u: AmdIommuUnit): AmdEventRecord[] {
    const mem = this.ctx.port.memory;
    let head = this.io.r32(u, MMIO_EVENT_HEAD);
    const tail = this.io.r32(u, MMIO_EVENT_TAIL);
    const out: AmdEventRecord[] = [];
    while (head !== tail) {
      const at = u.evtBuf + head;
      const dw = [mem.read32(at), mem.read32(at + 4), mem.read32(at + 8), mem.read32(at + 12)];
      const e = decodeEvent(dw);
      const address = (BigInt(e.addrHi >>> 0) << 32n) | BigInt(e.addrLo >>> 0);
      const rec: AmdEventRecord = { ...e, unit: u.name, name: eventName(e.code), address, logged: this.print(u, e, address), ns: this.ctx.now() };
      out.push(rec);
      for (let i = 0; i < EVENT_BYTES; i += 4) mem.write32(at + i, 0);
      head = (head + EVENT_BYTES) % EVT_BUFFER_SIZE;
    }
    this.io.w32(u, MMIO_EVENT_HEAD, head);
    this.records.push(...out);
    return out;
  }

  /** amd_iommu_int_thread: clear what is handled, then read the log while its interrupt bit was set. */
  interrupt(u: AmdIommuUnit): AmdEventRecord[] {
    const status = this.io.r32(u, MMIO_STATUS);
    const mask = STATUS_EVENT_LOG_INT | STATUS_EVENT_OVERFLOW;
    if ((status & mask) === 0) return [];
    this.io.w32(u, MMIO_STATUS, status & mask);
    const got = this.poll(u);
    if ((status & STATUS_EVENT_OVERFLOW) !== 0) this.ctx.log.info("AMD-Vi: IOMMU event log overflow");
    return got;
  }
}
