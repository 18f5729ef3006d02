// Walk VT-d tables the way `iommu walk` does over a memory dump, here over memory where tables were just built,
// and compare each answer with what the hardware model does with the same request.
import { PhysicalMemory, VtdTables, VtdUnit, enableTranslation, registerWindow } from "iommu-kit/vtd";
import { forensicCaps, walkIova } from "iommu-kit/walk";

// A bare unit (QEMU 7.2's intel-iommu defaults, 39-bit address width) over 64 MiB of memory.
const memory = new PhysicalMemory(64 * 2 ** 20);
const unit = new VtdUnit({ memory });
const tables = new VtdTables(memory, 0x100000);
const domain = tables.domain(7, 3);
const sid = 0x0018; // 00:03.0
tables.attach(sid, domain);
tables.map(domain, 0x20_0000, 0x40_0000, { size: 2 * 2 ** 20 }); // one 2 MiB page, read and write
tables.map(domain, 0x1000, 0x9000, { write: false }); // one read-only 4 KiB page
enableTranslation(registerWindow(unit, 0), tables.root); // the unit's registers start at offset 0

const caps = forensicCaps({ awBits: 39 });
for (const [iova, access] of [[0x21_2345, "write"], [0x1000, "read"], [0x1000, "write"], [0x5000, "read"]]) {
  const w = walkIova(memory, { rtaddr: BigInt(tables.root), sid, iova: BigInt(iova), access, caps });
  const path = w.levels.map((l) => l.table).join(" -> ");
  const walked = w.result === "ok" ? w.hpa : `fault 0x${w.reason.toString(16).padStart(2, "0")}`;
  const t = unit.translate({ sid, addr: iova, length: 1, write: access === "write" });
  const hw = t.ok ? `0x${t.segments[0].hpa.toString(16)}` : `fault 0x${t.reason.toString(16).padStart(2, "0")}`;
  console.log(`${access} 0x${iova.toString(16)}: walk ${walked} via ${path}; hardware ${hw}${walked === hw ? "" : " (differs)"}`);
}
