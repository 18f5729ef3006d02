/**
 * QEMU 7.2 amd-iommu trace log, as the AMD-Vi oracle reads it: the last translation of every (device, IOVA
 * page), every interrupt remap with what QEMU looked at on the way (IntCtl, the IRTE address and value), and what
 * software did to the unit around it — register accesses, control register values, device table entry and
 * interrupt table invalidations — each with its line, so a remap can be placed before or after them.
 *
 * QEMU 7.2 traces register writes under `amdvi_mmio_read` too (its write path calls the read trace), so a
 * register's first traced access is the earliest it can have been written; `amdvi_control_status` gives the
 * Control register's value after each write to it.
 */

export interface AmdMsiTrace {
  /** Line of the `amdvi_ir_remap_msi_req` (1-based). */
  line: number;
  devid: number;
  addr: bigint;
  data: bigint;
  outAddr: bigint;
  outData: bigint;
  /** QEMU traced a target abort (its remap line then repeats the input). */
  aborted: boolean;
  /** IntCtl QEMU read from the DTE; null when it forwarded before looking (no device table, or DTE.IV=0). */
  intCtl: number | null;
  /** The IRTE QEMU read: its address and value (GA: lo = bytes 0–7, hi = bytes 8–15; legacy: lo only). */
  irte: { addr: bigint; lo: bigint; hi: bigint | null } | null;
}

export interface AmdTrace {
  translations: Map<string, { devid: string; iova: bigint; hpa: bigint }>;
  msis: AmdMsiTrace[];
  /** Line of the first traced access to any AMD-Vi register; null when none. */
  firstRegisterAccess: number | null;
  /** Line of the first traced access to the device table base register. */
  firstDevTabAccess: number | null;
  /** Control register after each write. */
  controls: Array<{ line: number; value: bigint }>;
  /** INVALIDATE_DEVTAB_ENTRY lines per DeviceID. */
  devtabInvals: Map<number, number[]>;
  /** INVALIDATE_INTERRUPT_TABLE lines (QEMU 7.2 does not trace the DeviceID). */
  intrInvals: number[];
}

const RE = {
  translation: /amdvi_translation_result\s+devid:\s*([0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\s+gpa\s+0x([0-9a-f]+)\s+hpa\s+0x([0-9a-f]+)/i,
  req: /amdvi_ir_remap_msi_req\s+addr\s+0x([0-9a-f]+)\s+data\s+0x([0-9a-f]+)\s+devid\s+0x([0-9a-f]+)/i,
  out: /amdvi_ir_remap_msi\s+\(addr\s+0x([0-9a-f]+),\s*data\s+0x([0-9a-f]+)\)\s*->\s*\(addr\s+0x([0-9a-f]+),\s*data\s+0x([0-9a-f]+)\)/i,
  intCtl: /amdvi_ir_intctl\s+int_ctl\s+0x([0-9a-f]+)/i,
  irte: /amdvi_ir_irte\s+addr\s+0x([0-9a-f]+)\s+offset\s+0x([0-9a-f]+)/i,
  irteGa: /amdvi_ir_irte_ga_val\s+hi\s+0x([0-9a-f]+)\s+lo\s+0x([0-9a-f]+)/i,
  irteVal: /amdvi_ir_irte_val\s+(?:data\s+)?0x([0-9a-f]+)/i,
  register: /amdvi_mmio_(?:read|write)\s+(AMDVI_MMIO_[A-Z_]+)/,
  control: /amdvi_control_status\s+\S+\s+state\s+0x([0-9a-f]+)/i,
  devtabInval: /amdvi_devtab_inval\s.*devid:\s*([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])/i,
  intrInval: /amdvi_intr_inval\b/,
};

const big = (h: string | undefined): bigint => BigInt("0x" + (h ?? "0"));

/** Parses the trace log written with the oracle's trace events. */
export function parseAmdTrace(text: string): AmdTrace {
  const t: AmdTrace = { translations: new Map(), msis: [], firstRegisterAccess: null, firstDevTabAccess: null, controls: [], devtabInvals: new Map(), intrInvals: [] };
  let open: Omit<AmdMsiTrace, "outAddr" | "outData"> | null = null;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    const n = i + 1;
    let m = RE.translation.exec(line);
    if (m) {
      const iova = big(m[2]);
      t.translations.set(`${m[1]} ${iova >> 12n}`, { devid: m[1] ?? "", iova, hpa: big(m[3]) });
      continue;
    }
    if ((m = RE.req.exec(line))) {
      open = { line: n, devid: parseInt(m[3] ?? "0", 16), addr: big(m[1]), data: big(m[2]), aborted: false, intCtl: null, irte: null };
      continue;
    }
    if (open !== null) {
      if (line.includes("amdvi_ir_target_abort")) open.aborted = true;
      if ((m = RE.intCtl.exec(line))) open.intCtl = parseInt(m[1] ?? "0", 16);
      if ((m = RE.irte.exec(line))) open.irte = { addr: big(m[1]) + big(m[2]), lo: 0n, hi: null };
      if ((m = RE.irteGa.exec(line)) && open.irte) open.irte = { ...open.irte, hi: big(m[1]), lo: big(m[2]) };
      else if ((m = RE.irteVal.exec(line)) && open.irte) open.irte = { ...open.irte, lo: big(m[1]) };
      if ((m = RE.out.exec(line))) {
        t.msis.push({ ...open, outAddr: big(m[3]), outData: big(m[4]) });
        open = null;
        continue;
      }
    }
    registerEvent(t, line, n);
  }
  return t;
}

function registerEvent(t: AmdTrace, line: string, n: number): void {
  let m = RE.register.exec(line);
  if (m) {
    t.firstRegisterAccess ??= n;
    if (m[1] === "AMDVI_MMIO_DEVTAB_BASE") t.firstDevTabAccess ??= n;
    return;
  }
  if ((m = RE.control.exec(line))) {
    t.firstRegisterAccess ??= n;
    t.controls.push({ line: n, value: big(m[1]) });
    return;
  }
  if ((m = RE.devtabInval.exec(line))) {
    const devid = (parseInt(m[1] ?? "0", 16) << 8) | (parseInt(m[2] ?? "0", 16) << 3) | parseInt(m[3] ?? "0", 16);
    const list = t.devtabInvals.get(devid) ?? [];
    list.push(n);
    t.devtabInvals.set(devid, list);
    return;
  }
  if (RE.intrInval.test(line)) t.intrInvals.push(n);
}

/** What the trace says about the unit's registers just before `line`. */
export interface RegisterState {
  /** No register had been accessed: the unit was as reset (device table base 0, Control 0). */
  untouched: boolean;
  /** The device table base register had been accessed (so possibly written). */
  devTabProgrammed: boolean;
  /** Control after the last write before `line` (0 when none). */
  control: bigint;
}

export function registerStateAt(t: AmdTrace, line: number): RegisterState {
  let control = 0n;
  for (const c of t.controls) {
    if (c.line >= line) break;
    control = c.value;
  }
  return {
    untouched: t.firstRegisterAccess === null || t.firstRegisterAccess > line,
    devTabProgrammed: t.firstDevTabAccess !== null && t.firstDevTabAccess < line,
    control,
  };
}
