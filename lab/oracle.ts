/**
 * QEMU's own VT-d model as a test oracle for `iommu walk`.
 *
 * For each variant (aw-bits 39 and 48, legacy mode; and the same in scalable mode: QEMU's x-scalable-mode=on with
 * Linux's intel_iommu=on,sm_on) it boots Linux with `-device intel-iommu,intremap=on,caching-mode=on` and
 * `intel_iommu=on iommu.strict=1`, NVMe + virtio-net (iommu_platform) + e1000e, tracing every DMA translation
 * (vtd_dmar_translate), every remapped MSI (vtd_ir_irte_get, vtd_ir_remap_msi) and the table registers
 * (vtd_reg_dmar_root, vtd_reg_ir_root). Once the guest has done DMA it pauses the machine over QMP, reads RTADDR,
 * IRTA, CAP, ECAP and GSTS with `xp`, saves all RAM with `pmemsave`, and quits. Then:
 *
 *   - a small independent reader (lab/vtd-ref.ts) sorts the traced (device, IOVA) pairs into still mapped as
 *     QEMU translated them, remapped since, and unmapped since (strict mode unmaps most IOVAs right away);
 *   - `iommu walk --mem DUMP --rtaddr … --bdf … --iova … --json` must give QEMU's address and page size for
 *     every still-mapped pair, and a fault for every unmapped one;
 *   - `iommu walk --mem DUMP --irta … --sid … --msi-addr … --msi-data … --json` must give QEMU's output MSI
 *     address and data for every traced remap whose table entry is unchanged at the pause;
 *   - the model's CAP/ECAP for QEMU 7.2 (src/hw/vtd/config.ts) must equal what QEMU reports.
 *
 * Dumps and traces stay in lab/work/runs/oracle-*. With --update-fixtures, a sparse extract (only the table
 * pages the walks read, plus the expected results) goes to test/fixtures/vtd-oracle/*.json.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { loadCli, runDmaGuest, type CliRunner } from "./dma-guest.js";
import { describeFailure, kernelVersion, qemuVersion, REPO_DIR, tail, type Qmp } from "./qemu.js";
import type { Report } from "./report.js";
import { bdfText, Dump, refIrte, refTranslate, refTranslateScalable } from "./vtd-ref.js";

export interface OracleOptions {
  echo: boolean;
  /** Run only the variants whose name contains one of these (aw39, aw48, sm-aw39, sm-aw48, sm-default-aw39; "sm" for the scalable ones). */
  only?: string[];
  timeoutSec?: number;
  updateFixtures?: boolean;
}

interface Variant {
  name: string;
  device: string;
  awBits: 39 | 48;
  /** Scalable mode: QEMU's x-scalable-mode=on, Linux's intel_iommu=on,sm_on. */
  scalable: boolean;
  cmdline: string;
}

const CMDLINE = "intel_iommu=on iommu.strict=1";
const SM_CMDLINE = "intel_iommu=on,sm_on iommu.strict=1";

const VARIANTS: Variant[] = [
  { name: "aw39", device: "intel-iommu,intremap=on,caching-mode=on", awBits: 39, scalable: false, cmdline: CMDLINE },
  { name: "aw48", device: "intel-iommu,intremap=on,caching-mode=on,aw-bits=48", awBits: 48, scalable: false, cmdline: CMDLINE },
  { name: "sm-aw39", device: "intel-iommu,intremap=on,caching-mode=on,x-scalable-mode=on", awBits: 39, scalable: true, cmdline: SM_CMDLINE },
  { name: "sm-aw48", device: "intel-iommu,intremap=on,caching-mode=on,x-scalable-mode=on,aw-bits=48", awBits: 48, scalable: true, cmdline: SM_CMDLINE },
  // Without sm_on: Debian's 6.1 is built with CONFIG_INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON=y, so RTADDR.TTM is 01 all the same.
  { name: "sm-default-aw39", device: "intel-iommu,intremap=on,caching-mode=on,x-scalable-mode=on", awBits: 39, scalable: true, cmdline: CMDLINE },
];

const MEM_MIB = 512;
const VTD_BASE = 0xfed90000;
const TRACES = ["vtd_dmar_translate", "vtd_ir_irte_get", "vtd_ir_remap_msi", "vtd_reg_dmar_root", "vtd_reg_ir_root"];

export const ORACLE_FIXTURES_DIR = join(REPO_DIR, "test", "fixtures", "vtd-oracle");

interface Registers {
  rtaddr: bigint;
  irta: bigint;
  cap: bigint;
  ecap: bigint;
  gsts: bigint;
}

interface Translation {
  sid: number;
  iova: bigint;
  gpa: bigint;
  mask: bigint;
  count: number;
}

interface Remap {
  sid: number;
  index: number;
  irteLo: bigint;
  irteHi: bigint;
  addr: bigint;
  data: bigint;
  outAddr: bigint;
  outData: bigint;
}

interface Trace {
  translations: Map<string, Translation>;
  remaps: Map<string, Remap>;
  translateLines: number;
  remapLines: number;
  dmarRoot: bigint | null;
  irRoot: { addr: bigint; size: number } | null;
}

const H = "0x([0-9a-f]+)";

export function parseTrace(text: string): Trace {
  const t: Trace = { translations: new Map(), remaps: new Map(), translateLines: 0, remapLines: 0, dmarRoot: null, irRoot: null };
  const reTr = new RegExp(`vtd_dmar_translate dev ([0-9a-f]+):([0-9a-f]+)\\.([0-9a-f]+) iova ${H} -> gpa ${H} mask ${H}`);
  const reIrte = new RegExp(`vtd_ir_irte_get index (\\d+) low ${H} high ${H}`);
  const reMsi = new RegExp(`vtd_ir_remap_msi \\(addr ${H}, data ${H}\\) -> \\(addr ${H}, data ${H}\\)`);
  const reRoot = new RegExp(`vtd_reg_dmar_root addr ${H}`);
  const reIr = new RegExp(`vtd_reg_ir_root addr ${H} size ${H}`);
  let lastIrte: { index: number; lo: bigint; hi: bigint } | null = null;
  for (const line of text.split("\n")) {
    let m = reTr.exec(line);
    if (m) {
      t.translateLines++;
      const sid = (parseInt(m[1] ?? "0", 16) << 8) | (parseInt(m[2] ?? "0", 16) << 3) | parseInt(m[3] ?? "0", 16);
      const iova = BigInt("0x" + m[4]);
      const key = `${sid}|${iova}`;
      const prev = t.translations.get(key);
      t.translations.set(key, { sid, iova, gpa: BigInt("0x" + m[5]), mask: BigInt("0x" + m[6]), count: (prev?.count ?? 0) + 1 });
      continue;
    }
    m = reIrte.exec(line);
    if (m) {
      // QEMU 7.2 passes the entry's upper quadword as "low" and the lower one as "high" (the present bit, vector
      // and destination are in the lower quadword, the source id in the upper one).
      lastIrte = { index: Number(m[1]), lo: BigInt("0x" + m[3]), hi: BigInt("0x" + m[2]) };
      continue;
    }
    m = reMsi.exec(line);
    if (m) {
      t.remapLines++;
      if (lastIrte === null) continue; // compatibility format: no table entry involved
      const r: Remap = {
        sid: Number(lastIrte.hi & 0xffffn),
        index: lastIrte.index,
        irteLo: lastIrte.lo,
        irteHi: lastIrte.hi,
        addr: BigInt("0x" + m[1]),
        data: BigInt("0x" + m[2]),
        outAddr: BigInt("0x" + m[3]),
        outData: BigInt("0x" + m[4]),
      };
      lastIrte = null;
      t.remaps.set(`${r.sid}|${r.addr}|${r.data}`, r);
      continue;
    }
    m = reRoot.exec(line);
    if (m) {
      t.dmarRoot = BigInt("0x" + m[1]);
      continue;
    }
    m = reIr.exec(line);
    if (m) t.irRoot = { addr: BigInt("0x" + m[1]), size: parseInt(m[2] ?? "0", 16) };
  }
  return t;
}

const hex = (v: bigint | number) => "0x" + v.toString(16);

async function readRegisters(q: Qmp): Promise<Registers> {
  const xp = async (off: number, fmt: "g" | "w") => {
    const text = await q.hmp(`xp /1${fmt}x ${hex(VTD_BASE + off)}`);
    const m = /:\s*0x([0-9a-f]+)/i.exec(text);
    if (!m) throw new Error(`cannot parse xp output '${text.trim()}'`);
    return BigInt("0x" + m[1]);
  };
  return { rtaddr: await xp(0x20, "g"), irta: await xp(0xb8, "g"), cap: await xp(0x08, "g"), ecap: await xp(0x10, "g"), gsts: await xp(0x1c, "w") };
}


/** Why `iommu walk` cannot be used here (its --help fails or lacks --rtaddr), or null when it can. */
function walkHelpProblem(): string | null {
  const r = spawnSync(process.execPath, [join(REPO_DIR, "bin", "iommu.js"), "walk", "--help"], { encoding: "utf8" });
  if (r.status !== 0) return `'iommu walk --help' exited ${r.status ?? r.signal}: ${tail(r.stderr || r.stdout || "(no output)", 3)}`;
  if (!/--rtaddr/.test(r.stdout)) return "'iommu walk --help' does not offer --rtaddr";
  return null;
}

interface VariantResult {
  regs: Registers;
  dumpPath: string;
  trace: Trace;
}

async function bootVariant(report: Report, v: Variant, o: OracleOptions): Promise<VariantResult | null> {
  const suite = `oracle ${v.name}`;
  const name = `oracle-${v.name}`;
  const { boot: r, outDir, dumpPath, regs: got } = await runDmaGuest({
    name,
    memMiB: MEM_MIB,
    cmdline: v.cmdline,
    iommuDevice: v.device,
    traces: TRACES,
    readRegisters,
    ...(o.timeoutSec !== undefined ? { timeoutSec: o.timeoutSec } : {}),
    echo: o.echo,
  });
  if (got === null) {
    report.fail(suite, "guest does DMA, is paused and dumped", describeFailure(r));
    return null;
  }
  report.pass(suite, "guest does DMA, is paused and dumped", `boot ${r.bootSec?.toFixed(1) ?? "?"} s, total ${r.elapsedSec.toFixed(1)} s`);
  writeFileSync(join(outDir, "registers.json"), JSON.stringify(Object.fromEntries(Object.entries(got).map(([k, x]) => [k, hex(x as bigint)])), null, 2) + "\n");
  return { regs: got, dumpPath, trace: parseTrace(readFileSync(join(outDir, "trace.log"), "utf8")) };
}

function registerChecks(report: Report, suite: string, v: Variant, res: VariantResult): void {
  const { regs, trace } = res;
  const want = 0xc3000000n; // TES 31, RTPS 30, IRES 25, IRTPS 24 (VT-d 10.4.5)
  report.check(suite, "GSTS: translation and interrupt remapping enabled (TES, RTPS, IRES, IRTPS)",
    (regs.gsts & want) === want, `GSTS ${hex(regs.gsts)}`);
  report.check(suite, "RTADDR is the root table QEMU latched (vtd_reg_dmar_root)",
    trace.dmarRoot !== null && (regs.rtaddr & ~0xfffn) === trace.dmarRoot, `RTADDR ${hex(regs.rtaddr)}, traced ${trace.dmarRoot === null ? "none" : hex(trace.dmarRoot)}`);
  report.check(suite, "IRTA is the table QEMU latched (vtd_reg_ir_root)",
    trace.irRoot !== null && (regs.irta & ~0xfffn) === trace.irRoot.addr && 2 ** (Number(regs.irta & 0xfn) + 1) === trace.irRoot.size,
    `IRTA ${hex(regs.irta)}, traced ${trace.irRoot ? `${hex(trace.irRoot.addr)} size ${hex(trace.irRoot.size)}` : "none"}`);
  report.check(suite, `CAP.MGAW is ${v.awBits} bits`, Number((regs.cap >> 16n) & 0x3fn) + 1 === v.awBits, `CAP ${hex(regs.cap)}`);
  const ttm = Number((regs.rtaddr >> 10n) & 3n);
  report.check(suite, `RTADDR.TTM is ${v.scalable ? "01 (scalable)" : "00 (legacy)"}`, ttm === (v.scalable ? 1 : 0), `RTADDR ${hex(regs.rtaddr)}, TTM ${ttm}`);
  report.check(suite, "DMA was traced", trace.translations.size > 0, "no vtd_dmar_translate lines");
  report.check(suite, "remapped MSIs were traced", trace.remaps.size > 0, "no vtd_ir_remap_msi lines with an IRTE");
}

async function modelCapChecks(report: Report, suite: string, v: Variant, regs: Registers): Promise<void> {
  const path = join(REPO_DIR, "src", "hw", "vtd", "config.ts");
  if (!existsSync(path)) {
    report.fail(suite, "model CAP/ECAP equal QEMU's", "src/hw/vtd/config.ts does not exist");
    return;
  }
  const cfg = (await import(pathToFileURL(path).href)) as {
    qemuVtdConfig?: (o: { awBits: number; scalableMode?: boolean }) => unknown;
    buildCap?: (c: unknown) => bigint;
    buildEcap?: (c: unknown) => bigint;
  };
  if (!cfg.qemuVtdConfig || !cfg.buildCap || !cfg.buildEcap) {
    report.fail(suite, "model CAP/ECAP equal QEMU's", "src/hw/vtd/config.ts exports no qemuVtdConfig/buildCap/buildEcap");
    return;
  }
  const c = cfg.qemuVtdConfig({ awBits: v.awBits, ...(v.scalable ? { scalableMode: true } : {}) });
  const cap = cfg.buildCap(c);
  const ecap = cfg.buildEcap(c);
  report.check(suite, "model CAP for QEMU 7.2 equals QEMU's", cap === regs.cap, `model ${hex(cap)}, QEMU ${hex(regs.cap)}, differing bits ${hex(cap ^ regs.cap)}`);
  report.check(suite, "model ECAP for QEMU 7.2 equals QEMU's", ecap === regs.ecap, `model ${hex(ecap)}, QEMU ${hex(regs.ecap)}, differing bits ${hex(ecap ^ regs.ecap)}`);
}

interface Classified {
  stillMapped: Translation[];
  remapped: { t: Translation; hpa: bigint }[];
  unmapped: Translation[];
  pages: Set<bigint>;
}

/** The reference reader for RTADDR's translation table mode (TTM 01: scalable, else legacy). */
function refWalk(dump: Dump, rtaddr: bigint, sid: number, iova: bigint) {
  return ((rtaddr >> 10n) & 3n) === 1n ? refTranslateScalable(dump, rtaddr, sid, iova) : refTranslate(dump, rtaddr, sid, iova);
}

function classify(dump: Dump, regs: Registers, trace: Trace): Classified {
  const c: Classified = { stillMapped: [], remapped: [], unmapped: [], pages: new Set() };
  for (const t of trace.translations.values()) {
    const w = refWalk(dump, regs.rtaddr, t.sid, t.iova);
    if (w.ok && w.hpa === t.gpa && BigInt(w.pageSize) === t.mask + 1n) {
      c.stillMapped.push(t);
      for (const p of w.pagesRead) c.pages.add(p);
    } else if (w.ok) c.remapped.push({ t, hpa: w.hpa });
    else c.unmapped.push(t);
  }
  return c;
}

interface WalkJson {
  result?: string;
  hpa?: string;
  pageSize?: number;
  reason?: number;
  reasonName?: string;
  msi?: { address?: string; data?: string };
}

function parseWalk(out: string): WalkJson | null {
  try {
    return JSON.parse(out) as WalkJson;
  } catch {
    return null;
  }
}

async function walkChecks(report: Report, suite: string, v: Variant, res: VariantResult, cls: Classified, cli: CliRunner): Promise<void> {
  const { regs, dumpPath, trace } = res;
  const common = ["--mem", dumpPath, "--cap", hex(regs.cap), "--ecap", hex(regs.ecap), "--json"];
  const dmarArgs = (t: Translation) => ["walk", "--rtaddr", hex(regs.rtaddr), "--bdf", bdfText(t.sid), "--iova", hex(t.iova), ...common];

  // The same walk through the real executable once, to be sure the in-process runner is the CLI.
  const first = cls.stillMapped[0];
  if (first) {
    const p = spawnSync(process.execPath, [join(REPO_DIR, "bin", "iommu.js"), ...dmarArgs(first)], { encoding: "utf8" });
    const inproc = await cli(dmarArgs(first));
    report.check(suite, "bin/iommu.js walk and the in-process CLI print the same", p.stdout === inproc.out && p.status === inproc.code,
      `process exit ${p.status}: ${tail(p.stderr || p.stdout, 2)}; in-process exit ${inproc.code}`);
  }

  let agreed = 0;
  const disagreed: string[] = [];
  for (const t of cls.stillMapped) {
    const r = await cli(dmarArgs(t));
    const j = parseWalk(r.out);
    const ok = j?.result === "ok" && j.hpa !== undefined && BigInt(j.hpa) === t.gpa && BigInt(j.pageSize ?? 0) === t.mask + 1n;
    if (ok) agreed++;
    else disagreed.push(`${bdfText(t.sid)} iova ${hex(t.iova)}: QEMU ${hex(t.gpa)}/${hex(t.mask + 1n)}, walk ${j ? `${j.result} ${j.hpa ?? j.reasonName ?? ""} ${j.pageSize ?? ""}` : `exit ${r.code} ${tail(r.err, 1)}`}`);
  }
  let faulted = 0;
  const notFaulted: string[] = [];
  for (const t of cls.unmapped) {
    const r = await cli(dmarArgs(t));
    const j = parseWalk(r.out);
    if (j?.result === "fault") faulted++;
    else notFaulted.push(`${bdfText(t.sid)} iova ${hex(t.iova)}: ${j ? `${j.result} ${j.hpa ?? ""}` : `exit ${r.code} ${tail(r.err, 1)}`}`);
  }
  let remapAgree = 0;
  for (const { t, hpa } of cls.remapped) {
    const j = parseWalk((await cli(dmarArgs(t))).out);
    if (j?.result === "ok" && j.hpa !== undefined && BigInt(j.hpa) === hpa) remapAgree++;
  }
  report.note(`${suite}: ${v.scalable ? "scalable mode, " : ""}DMA: ${trace.translateLines} traced translations, ${trace.translations.size} distinct (device, IOVA); ` +
    `${cls.stillMapped.length} still mapped as QEMU translated them, ${cls.remapped.length} remapped since, ${cls.unmapped.length} unmapped since; ` +
    `walk agreed ${agreed}, disagreed ${disagreed.length}; unmapped: ${faulted} faults; remapped: walk agrees with the tables for ${remapAgree}`);
  report.check(suite, "some traced IOVAs are still mapped at the pause", cls.stillMapped.length > 0, "none: nothing to compare");
  report.check(suite, `walk agrees with QEMU on all ${cls.stillMapped.length} still-mapped IOVAs`, disagreed.length === 0,
    `${disagreed.length} disagree, e.g. ${disagreed.slice(0, 3).join("; ")}`);
  report.check(suite, `walk faults on all ${cls.unmapped.length} IOVAs unmapped since`, notFaulted.length === 0,
    `${notFaulted.length} translate, e.g. ${notFaulted.slice(0, 3).join("; ")}`);
  report.check(suite, `walk agrees with lab/vtd-ref.ts on all ${cls.remapped.length} IOVAs remapped since`, remapAgree === cls.remapped.length,
    `${cls.remapped.length - remapAgree} differ`);

  // --list: every still-mapped IOVA lies in one of the device's merged ranges, at the same offset.
  const bySid = new Map<number, Translation[]>();
  for (const t of cls.stillMapped) bySid.set(t.sid, [...(bySid.get(t.sid) ?? []), t]);
  const listMisses: string[] = [];
  for (const [sid, ts] of bySid) {
    const r = await cli(["walk", "--rtaddr", hex(regs.rtaddr), "--bdf", bdfText(sid), "--list", ...common]);
    let ranges: { iova: bigint; hpa: bigint; size: bigint }[];
    try {
      const j = JSON.parse(r.out) as { result?: string; ranges?: { iova: string; hpa: string; size: string }[] };
      ranges = (j.ranges ?? []).map((x) => ({ iova: BigInt(x.iova), hpa: BigInt(x.hpa), size: BigInt(x.size) }));
    } catch {
      listMisses.push(`${bdfText(sid)}: not JSON (exit ${r.code}) ${tail(r.err, 1)}`);
      continue;
    }
    for (const t of ts) {
      const hit = ranges.find((x) => t.iova >= x.iova && t.iova < x.iova + x.size);
      if (!hit || hit.hpa + (t.iova - hit.iova) !== t.gpa) listMisses.push(`${bdfText(sid)} iova ${hex(t.iova)} -> QEMU ${hex(t.gpa)}, list ${hit ? hex(hit.hpa + (t.iova - hit.iova)) : "no range"}`);
    }
  }
  report.check(suite, `walk --list covers all ${cls.stillMapped.length} still-mapped IOVAs at QEMU's addresses (${bySid.size} devices)`,
    listMisses.length === 0, `${listMisses.length} misses, e.g. ${listMisses.slice(0, 3).join("; ")}`);

  // Interrupt remapping.
  const dump = new Dump(dumpPath);
  let irAgreed = 0;
  let irStale = 0;
  const irDisagreed: string[] = [];
  try {
    for (const m of trace.remaps.values()) {
      const irte = refIrte(dump, regs.irta, m.addr, Number(m.data));
      if (irte === null || irte.index !== m.index || irte.lo !== m.irteLo || irte.hi !== m.irteHi) {
        irStale++;
        continue;
      }
      const r = await cli(["walk", "--mem", dumpPath, "--irta", hex(regs.irta), "--sid", bdfText(m.sid), "--msi-addr", hex(m.addr), "--msi-data", hex(m.data), "--json"]);
      const j = parseWalk(r.out);
      const ok = j?.result === "ok" && j.msi?.address !== undefined && j.msi.data !== undefined &&
        BigInt(j.msi.address) === m.outAddr && BigInt(j.msi.data) === m.outData;
      if (ok) irAgreed++;
      else irDisagreed.push(`sid ${bdfText(m.sid)} (${hex(m.addr)}, ${hex(m.data)}): QEMU (${hex(m.outAddr)}, ${hex(m.outData)}), walk ${j ? `${j.result} ${j.msi ? `(${j.msi.address}, ${j.msi.data})` : j.reasonName ?? ""}` : `exit ${r.code} ${tail(r.err, 1)}`}`);
    }
  } finally {
    dump.close();
  }
  const irCompared = irAgreed + irDisagreed.length;
  report.note(`${suite}: MSI: ${trace.remapLines} traced remaps, ${trace.remaps.size} distinct (source, address, data); ${irCompared} with the entry unchanged at the pause, ${irStale} changed since; walk agreed ${irAgreed}, disagreed ${irDisagreed.length}`);
  report.check(suite, "some traced MSIs still use the same table entry at the pause", irCompared > 0, "none: nothing to compare");
  report.check(suite, `walk --irta agrees with QEMU on all ${irCompared} remapped MSIs`, irDisagreed.length === 0,
    `${irDisagreed.length} disagree, e.g. ${irDisagreed.slice(0, 3).join("; ")}`);
  void v;
}

/** A sparse extract for unit tests: registers, the table pages the walks read, and QEMU's answers. */
async function writeFixture(v: Variant, res: VariantResult, cls: Classified): Promise<string> {
  const dump = new Dump(res.dumpPath);
  const pages = new Set(cls.pages);
  const translations = cls.stillMapped.slice(0, 64);
  const unmapped = cls.unmapped.slice(0, 16);
  for (const t of unmapped) for (const p of refWalk(dump, res.regs.rtaddr, t.sid, t.iova).pagesRead) pages.add(p);
  const interrupts: Remap[] = [];
  for (const m of res.trace.remaps.values()) {
    const irte = refIrte(dump, res.regs.irta, m.addr, Number(m.data));
    if (irte && irte.lo === m.irteLo && irte.hi === m.irteHi && interrupts.length < 32) {
      interrupts.push(m);
      pages.add(irte.page);
    }
  }
  const pageData: Record<string, string> = {};
  for (const p of [...pages].sort((a, b) => (a < b ? -1 : 1))) {
    const b = dump.bytes(p, 4096);
    if (b) pageData[hex(p)] = b.toString("base64");
  }
  dump.close();
  const fixture = {
    description:
      "VT-d tables written by Linux and QEMU 7.2's answers for them. Memory is sparse: only the 4 KiB pages the " +
      "walks read (base64, keyed by physical address); every other byte reads as zero. translations: QEMU's " +
      "vtd_dmar_translate results still mapped at the pause; unmapped: IOVAs QEMU translated earlier that the " +
      "tables no longer map (a walk must fault, not present); interrupts: vtd_ir_remap_msi in -> out, entry unchanged.",
    recorded: {
      qemu: await qemuVersion(),
      kernel: kernelVersion(),
      device: v.device,
      cmdline: v.cmdline,
      devices: "00:02.0 e1000e, 00:03.0 virtio-net-pci (iommu_platform), 00:04.0 nvme",
    },
    registers: Object.fromEntries(Object.entries(res.regs).map(([k, x]) => [k, hex(x as bigint)])),
    translations: translations.map((t) => ({ bdf: bdfText(t.sid), iova: hex(t.iova), hpa: hex(t.gpa), pageSize: Number(t.mask + 1n) })),
    unmapped: unmapped.map((t) => ({ bdf: bdfText(t.sid), iova: hex(t.iova) })),
    interrupts: interrupts.map((m) => ({ sid: bdfText(m.sid), index: m.index, msiAddr: hex(m.addr), msiData: hex(m.data), outAddr: hex(m.outAddr), outData: hex(m.outData) })),
    pages: pageData,
  };
  mkdirSync(ORACLE_FIXTURES_DIR, { recursive: true });
  const path = join(ORACLE_FIXTURES_DIR, `qemu-vtd-${v.name}.json`);
  writeFileSync(path, JSON.stringify(fixture, null, 1) + "\n");
  return path;
}

export async function runOracle(report: Report, o: OracleOptions): Promise<void> {
  const walkProblem = walkHelpProblem();
  const cli = walkProblem === null ? await loadCli() : null;
  const variants = o.only === undefined ? VARIANTS : VARIANTS.filter((v) => o.only?.some((n) => v.name === n || (n === "sm" && v.scalable) || (n === "legacy" && !v.scalable)));
  if (variants.length === 0) report.fail("oracle", "a variant to run", `no variant is named ${o.only?.join(", ") ?? ""} (${VARIANTS.map((v) => v.name).join(", ")}, sm, legacy)`);
  for (const v of variants) {
    const suite = `oracle ${v.name}`;
    const res = await bootVariant(report, v, o);
    if (res === null) continue;
    registerChecks(report, suite, v, res);
    await modelCapChecks(report, suite, v, res.regs);
    const dump = new Dump(res.dumpPath);
    let cls: Classified;
    try {
      cls = classify(dump, res.regs, res.trace);
    } finally {
      dump.close();
    }
    if (walkProblem !== null) report.fail(suite, "iommu walk agrees with QEMU", walkProblem);
    else if (cli === null) report.fail(suite, "iommu walk agrees with QEMU", "dist/cli/main.js does not export runCliReporting (run npm run build)");
    else await walkChecks(report, suite, v, res, cls, cli);
    if (o.updateFixtures) report.note(`${suite}: wrote ${await writeFixture(v, res, cls)}`);
  }
}
