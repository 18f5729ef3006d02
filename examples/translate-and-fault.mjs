// Build a machine, map one page for a device, translate, and read the fault a stray write leaves.
// The unit is programmed the way a driver does it: tables in memory, then registers.
import { Machine, VtdTables, enableTranslation, formatBdf, registerWindow } from "iommu-kit/vtd";

const machine = Machine.load("q35"); // QEMU's q35 with one VT-d unit (intel-iommu, 39-bit guest address width)
const { name, base } = machine.units[0];
const regs = registerWindow(machine, base);
const nvme = machine.device("00:04.0");
const sid = nvme.requesterId;

// Root table, a context entry for the device, and a 3-level page table in RAM from 1 MiB up.
const tables = new VtdTables(machine.memory, 0x100000);
const domain = tables.domain(1, 3);
tables.attach(sid, domain);
const IOVA = 0x8000_0000;
const PAGE = 0x4000_0000; // the host page the device may use
tables.map(domain, IOVA, PAGE, { read: true, write: true });
enableTranslation(regs, tables.root);
console.log(`${name} at 0x${base.toString(16)}: translation enabled, root table at 0x${tables.root.toString(16)}`);

// A DMA write inside the mapping lands in the host page.
const out = nvme.write(IOVA + 0x10, new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
if (!out.ok) throw new Error("the mapped write faulted");
const seg = out.segments[0];
console.log(`write: IOVA 0x${seg.iova.toString(16)} -> HPA 0x${seg.hpa.toString(16)}, memory holds 0x${machine.memory.read32(PAGE + 0x10).toString(16)}`);

// A stray write one page past the mapping is blocked and recorded.
const stray = nvme.write(IOVA + 0x1000, new Uint8Array(4));
console.log(`stray write: ${stray.ok ? "reached memory" : `blocked (${stray.result.reasonName})`}`);

// The fault as a driver reads it: FSTS (VT-d spec 10.4.9), then the fault recording register FSTS.FRI points at,
// found through CAP.FRO (CAP bits 33:24, in units of 16 bytes; 10.4.2) and laid out as in 10.4.14.
const fsts = regs.mmioRead(0x34, 4);
const ppf = (fsts >>> 1) & 1;
const fri = (fsts >>> 8) & 0xff;
const cap = regs.mmioRead(0x08, 8);
const fro = Number((cap >> 24n) & 0x3ffn) * 16;
const lo = regs.mmioRead(fro + 16 * fri, 8);
const hi = regs.mmioRead(fro + 16 * fri + 8, 8);
const faultAddr = lo & ~0xfffn;
const source = Number(hi & 0xffffn);
const reason = Number((hi >> 32n) & 0xffn);
const isRead = ((hi >> 62n) & 1n) === 1n;
const bdf = formatBdf({ segment: 0, bus: source >> 8, device: (source >> 3) & 0x1f, fn: source & 7 });
console.log(`FSTS 0x${fsts.toString(16)}: primary pending fault ${ppf}, record ${fri}`);
console.log(`fault record: source ${bdf}, ${isRead ? "read" : "write"} at 0x${faultAddr.toString(16)}, reason 0x${reason.toString(16).padStart(2, "0")}`);
