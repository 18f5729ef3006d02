/** Text rendering of forensic walks: one line per table entry saying what it is and what it means. */
import type { LevelReport, ListReport, MsiReport, WalkReport } from "./walk.js";

function sizeName(bytes: number): string {
  if (bytes >= 0x40000000 && bytes % 0x40000000 === 0) return `${bytes / 0x40000000} GiB`;
  if (bytes >= 0x100000 && bytes % 0x100000 === 0) return `${bytes / 0x100000} MiB`;
  if (bytes >= 0x400 && bytes % 0x400 === 0) return `${bytes / 0x400} KiB`;
  return `${bytes} bytes`;
}

/** "0x…" as 16 hex digits, the way entries are usually printed. */
function pad16(v: string): string {
  return BigInt(v).toString(16).padStart(16, "0");
}

function perms(read: boolean | undefined, write: boolean | undefined): string {
  const r = read === true ? "R" : "-";
  const w = write === true ? "W" : "-";
  return r + w;
}

/** What one entry says, in words. */
export function explainLevel(l: LevelReport): string {
  if (l.table === "root entry") {
    return l.present ? `present, context table at ${l.next ?? "?"}` : "not present";
  }
  if (l.table === "context entry") {
    const head = l.present ? "present" : "not present";
    const fpd = l.fpd === true ? ", FPD (faults not recorded)" : "";
    if (!l.present) return head + fpd;
    const levels = l.addressWidth !== undefined ? `${(l.addressWidth - 30) / 9 + 2}-level tables (${l.addressWidth}-bit)` : "";
    const tt = l.translationType === "pass-through" ? "pass-through" : `${l.translationType ?? "?"}, ${levels}, page table at ${l.next ?? "?"}`;
    return `${head}, domain ${l.domainId ?? "?"}, ${tt}${fpd}`;
  }
  const sm = explainScalable(l);
  if (sm !== null) return sm;
  if (!l.present) return "not present (R = W = 0)";
  if (l.pageSize !== undefined) return `${perms(l.read, l.write)}, ${sizeName(l.pageSize)} page at ${l.next ?? "?"}`;
  return `${perms(l.read, l.write)}, next table at ${l.next ?? "?"}`;
}

/** Scalable-mode root, context, PASID directory and PASID entries, and first-stage entries; null for others. */
function explainScalable(l: LevelReport): string | null {
  const fpd = l.fpd === true ? ", FPD (faults not recorded)" : "";
  switch (l.table) {
    case "scalable-mode root entry":
      return l.present ? `lower context table at ${l.next ?? "?"}${l.nextUpper !== undefined ? `, upper at ${l.nextUpper}` : ""}` : "not present";
    case "scalable-mode context entry":
      if (!l.present) return `not present${fpd}`;
      return `present, PASID directory at ${l.next ?? "?"} (${l.pasidDirEntries ?? "?"} entries), RID_PASID ${l.ridPasid ?? "?"}, PASIDs ${l.pasidEnabled === true ? "enabled" : "disabled"}${fpd}`;
    case "PASID directory entry":
      return l.present ? `present, PASID table at ${l.next ?? "?"}${fpd}` : `not present${fpd}`;
    case "PASID entry": {
      if (!l.present) return `not present${fpd}`;
      const ss = l.next !== undefined ? `, second stage ${l.addressWidth ?? "?"}-bit at ${l.next}` : "";
      const fs = l.firstStageTable !== undefined ? `, first stage ${l.firstStageLevels ?? "?"}-level at ${l.firstStageTable}` : "";
      return `present, domain ${l.domainId ?? "?"}, ${l.translationType ?? "?"}${ss}${fs}${fpd}`;
    }
    default: {
      if (!l.table.startsWith("FS-")) return null;
      if (!l.present) return "not present (P = 0)";
      const bits = `${l.write === true ? "R/W" : "R/O"} ${l.user === true ? "U" : "S"}${l.accessed === true ? " A" : ""}${l.dirty === true ? " D" : ""}`;
      return l.pageSize !== undefined ? `${bits}, ${sizeName(l.pageSize)} page at ${l.next ?? "?"}` : `${bits}, next table at ${l.next ?? "?"}`;
    }
  }
}

function levelLines(levels: LevelReport[]): string[] {
  const width = Math.max(13, ...levels.map((l) => l.table.length));
  return levels.map((l) => {
    const what = l.table.endsWith("root entry") ? `bus 0x${l.index.toString(16).padStart(2, "0")}` : l.table.endsWith("context entry") ? `devfn 0x${l.index.toString(16).padStart(2, "0")}` : `index ${l.index}`;
    const value = l.valueHi !== undefined ? `${pad16(l.valueHi)} ${pad16(l.value)}` : pad16(l.value);
    return `  ${l.table.padEnd(width)}  ${what.padEnd(10)}  @ ${l.address.padEnd(14)}  ${value}\n  ${" ".repeat(width)}  ${explainLevel(l)}`;
  });
}

export function renderWalk(r: WalkReport): string {
  const who = r.bdf === "" ? "first-stage table" : `${r.bdf}${"pasid" in r && r.pasid !== undefined ? ` PASID ${r.pasid}` : ""}`;
  const lines = [`${who}  iova ${r.iova}`, ...levelLines(r.levels)];
  if (r.result === "ok") {
    const how = r.translationType === "pass-through" ? "pass-through" : `${sizeName(r.pageSize)} page, ${perms(r.read, r.write)}`;
    lines.push(`result: ${r.iova} -> ${r.hpa}  (${how}${r.domainId !== undefined ? `, domain ${r.domainId}` : ""})`);
  } else {
    lines.push(`result: fault 0x${r.reason.toString(16)} ${r.reasonName}: ${r.description}`);
  }
  return lines.join("\n") + "\n";
}

export function renderList(r: ListReport): string {
  if (r.result === "fault") {
    return [`${r.bdf}`, ...levelLines(r.levels), `result: fault 0x${r.reason.toString(16)} ${r.reasonName}: ${r.description}`].join("\n") + "\n";
  }
  if (r.translationType === "pass-through") return `${r.bdf}  domain ${r.domainId}: pass-through, every address maps to itself\n`;
  const head = `${r.bdf}  domain ${r.domainId}, ${r.translationType}, ${r.pagingLevels}-level tables (${r.addressWidth}-bit): ${r.mappings} page mapping${r.mappings === 1 ? "" : "s"} in ${r.ranges.length} range${r.ranges.length === 1 ? "" : "s"}`;
  const rows = r.ranges.map((x) => {
    const end = BigInt(x.iova) + BigInt(x.size) - 1n;
    return `  ${x.iova.padStart(18)} - 0x${end.toString(16).padEnd(16)} -> ${x.hpa.padEnd(18)} ${perms(x.read, x.write)}  ${String(x.pages).padStart(7)} x ${sizeName(x.pageSize)}`;
  });
  const tail = r.truncated ? ["(stopped early: the tables point back into themselves or hold too many mappings)"] : [];
  return [head, ...rows, ...tail].join("\n") + "\n";
}

export function renderMsi(r: MsiReport): string {
  if (r.result === "fault") {
    return `${r.bdf}  interrupt index ${r.index}\nresult: fault 0x${r.reason.toString(16)} ${r.reasonName}: ${r.description} (${r.detail})\n`;
  }
  const via = r.remapped ? `remapped through IRTE ${r.index ?? "?"}` : "passed through (compatibility format)";
  return (
    `${r.bdf}  ${via}\n` +
    `  vector ${r.vector} (0x${r.vector.toString(16)}), destination ${r.destination} (${r.destinationMode}), delivery mode ${r.deliveryMode}, ${r.triggerMode}${r.redirectionHint ? ", redirection hint" : ""}\n` +
    `result: MSI address ${r.msi.address} data ${r.msi.data}\n`
  );
}
