/**
 * The doctor's pass-through findings against what Linux and VFIO do for real (scenarios g and h):
 *
 *   early binding: vfio-pci.ids= on the kernel command line, vfio_pci loaded before the NIC drivers (g) or after
 *     them (h); the guest's own sysfs says who has the e1000e, and `check`, `status` and `groups` must agree;
 *     then (h) driver_override names pci-stub (not loaded) and the e1000e is let go: nothing may take it, the
 *     doctor must say DRIVER_OVERRIDE_OTHER, and its hint (driver_override vfio-pci, probe) must give it to
 *     vfio-pci (clearing the override gives it back to e1000e);
 *   reset: every probed device is moved to vfio-pci and VFIO is asked whether it can reset it by itself
 *     (VFIO_DEVICE_GET_INFO's RESET flag) and what a hot reset resets with it; the doctor's RESET_NONE /
 *     RESET_BUS_ONLY (recorded before the move) must follow from that;
 *   locked memory: the doctor runs with RLIMIT_MEMLOCK 64 KiB and unlimited (CAP_IPC_LOCK dropped) and with
 *     64 KiB as root, and each time a real 4 MiB VFIO_IOMMU_MAP_DMA is tried with the same limit and
 *     capabilities: MEMLOCK_LIMIT_LOW must appear exactly when the mapping fails.
 */
import { existsSync, readFileSync, readlinkSync } from "node:fs";
import { basename, join } from "node:path";
import { tail } from "./qemu.js";
import type { Report } from "./report.js";
import { E1000E_BDF, E1000E_IDS, type Scenario } from "./scenarios.js";

/** The devices whose reset the lab asks VFIO about: every endpoint except the lab's 9p shares and q35's own. */
export const RESET_BDFS = ["0000:00:02.0", "0000:00:03.0", "0000:00:04.0", "0000:00:06.0", "0000:00:06.1", "0000:02:01.0", "0000:02:02.0"];
/** The size of the real DMA mapping and of --guest-memory in the locked-memory checks. */
const MAP_BYTES = 4 << 20;
const MEMLOCK_MODES = ["low", "unlimited", "rootlow"] as const;
type MemlockMode = (typeof MEMLOCK_MODES)[number];
const MODE_TEXT: Record<MemlockMode, string> = {
  low: "RLIMIT_MEMLOCK 64 KiB, no CAP_IPC_LOCK",
  unlimited: "RLIMIT_MEMLOCK unlimited, no CAP_IPC_LOCK",
  rootlow: "RLIMIT_MEMLOCK 64 KiB, root with CAP_IPC_LOCK",
};

/** Environment lines for lab/guest/doctor-job.sh. */
export function passthroughJobEnv(sc: Scenario): string[] {
  if (sc.id === "g") return [`export CHECK_BDF='${E1000E_BDF}' MEMLOCK_BDF='${E1000E_BDF}' RESET_BDFS='${RESET_BDFS.join(" ")}'`];
  if (sc.id === "h") return [`export CHECK_BDF='${E1000E_BDF}' OVERRIDE_BDF='${E1000E_BDF}'`];
  return [];
}

export interface CliRun {
  rc: number;
  out: string;
  err: string;
}

type ReadCmd = (name: string) => CliRun | null;
type Obj = Record<string, unknown>;

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);

/** A CLI run's JSON object, or a failure recorded with the reason. */
function cliJson(report: Report, suite: string, what: string, r: CliRun | null): Obj | null {
  if (r === null) {
    report.fail(suite, what, "the guest did not run it (see job.log)");
    return null;
  }
  const j = parse(r.out);
  if (!isObj(j)) {
    report.fail(suite, what, `not a JSON object (exit ${r.rc}): ${tail(r.err || r.out, 3)}`);
    return null;
  }
  return j;
}

const codes = (problems: unknown): string[] => list(problems).map((p) => String(p.code));

/** The device's entry in `iommu groups --json`. */
function groupsDevice(groups: Obj, bdf: string): Obj | null {
  for (const g of list(groups.groups)) for (const d of list(g.devices)) if (d.address === bdf) return d;
  return null;
}

function checkItem(check: Obj, code: string): Obj | null {
  return list(check.checks).find((c) => c.code === code) ?? null;
}

/** Who has the device in the recorded tree (the driver link as sysfs stores it). */
function treeDriver(tree: string, bdf: string): string | null {
  const link = join(tree, "sys/bus/pci/devices", bdf, "driver");
  try {
    return basename(readlinkSync(link));
  } catch {
    return null;
  }
}

function readText(dir: string, file: string): string | null {
  const p = join(dir, file);
  return existsSync(p) ? readFileSync(p, "utf8") : null;
}

export function earlyBindChecks(report: Report, suite: string, sc: Scenario, dir: string, tree: string, cmd: ReadCmd): void {
  const c = (name: string, ok: boolean, detail: string) => report.check(suite, name, ok, detail);
  const dmesg = readText(tree, "dmesg.txt") ?? "";
  const added = new RegExp(`vfio_pci: add \\[${E1000E_IDS}`).test(dmesg);
  c(`guest: vfio_pci took vfio-pci.ids=${E1000E_IDS} from the command line`, added, `no 'vfio_pci: add [${E1000E_IDS}' in dmesg`);
  const driver = treeDriver(tree, E1000E_BDF);
  const wantVfio = sc.id === "g";
  c(`guest: ${E1000E_BDF} is on ${wantVfio ? "vfio-pci" : "e1000e"} from boot`, driver === (wantVfio ? "vfio-pci" : "e1000e"), `driver at boot: ${driver ?? "none"}`);

  const check = cliJson(report, suite, `check ${E1000E_BDF} --json`, cmd("check"));
  if (check !== null) {
    const dev = isObj(check.device) ? check.device : {};
    c(`check: device.driver is ${JSON.stringify(driver)} (as in sysfs)`, dev.driver === driver, `device.driver = ${JSON.stringify(dev.driver)}`);
    const item = checkItem(check, "EARLY_BINDING");
    const shown = item === null ? "no EARLY_BINDING item" : `ok=${String(item.ok)}: ${String(item.message)} | hint: ${String(item.hint)}`;
    if (wantVfio) {
      c("check: EARLY_BINDING passes, claimed by vfio-pci at boot", item?.ok === true && /claimed by vfio-pci at boot/.test(String(item.message)), shown);
    } else {
      c("check: EARLY_BINDING fails: e1000e claimed it first", item?.ok === false && /e1000e claimed it first/.test(String(item.message)), shown);
      c("check: the hint loads vfio-pci before e1000e (softdep)", /softdep e1000e pre: vfio-pci/.test(String(item?.hint)), shown);
    }
  }
  const status = cliJson(report, suite, "status --json (early binding)", cmd("status"));
  if (status !== null) {
    const found = list(status.problems).filter((p) => /^EARLY_BIND_/.test(String(p.code)));
    const shown = found.map((p) => `${String(p.code)}/${String(p.severity)}: ${String(p.message)}`).join("; ") || "no EARLY_BIND_* problem";
    if (wantVfio) c("status: no EARLY_BIND_* problem", found.length === 0, shown);
    else c(`status: EARLY_BIND_LOST (warning) for ${E1000E_BDF}`, found.some((p) => p.code === "EARLY_BIND_LOST" && p.severity === "warning" && String(p.message).startsWith(E1000E_BDF)), shown);
  }
  const groups = cliJson(report, suite, "groups --json (early binding)", cmd("groups"));
  if (groups !== null) {
    const d = groupsDevice(groups, E1000E_BDF);
    const f = codes(d?.findings).filter((x) => /^EARLY_BIND_/.test(x));
    const shown = `driver ${JSON.stringify(d?.driver)}, findings ${codes(d?.findings).join(",") || "none"}`;
    c(`groups: ${E1000E_BDF} on ${driver ?? "no driver"}`, d !== null && d.driver === driver, shown);
    if (wantVfio) c(`groups: ${E1000E_BDF} has no EARLY_BIND_* finding`, d !== null && f.length === 0, shown);
    else c(`groups: ${E1000E_BDF} has EARLY_BIND_LOST`, f.includes("EARLY_BIND_LOST"), shown);
  }
}

/** "driver=… group=…" as doctor-job.sh's state() writes it. */
function stateDriver(dir: string, file: string): string | null {
  const t = readText(dir, file);
  return t === null ? null : (/driver=(\S*)/.exec(t)?.[1] ?? "");
}

/** h: driver_override names pci-stub, which is not loaded; then the override is cleared as the hint says. */
export function overrideChecks(report: Report, suite: string, dir: string, cmd: ReadCmd): void {
  const c = (name: string, ok: boolean, detail: string) => report.check(suite, `driver_override: ${name}`, ok, detail);
  const held = stateDriver(dir, "state-override.txt");
  c(`guest: with driver_override pci-stub ${E1000E_BDF} has no driver (vfio-pci is loaded with its ids)`, held === "", `driver: ${held ?? "(not recorded)"}`);
  const check = cliJson(report, suite, `driver_override: check ${E1000E_BDF} --json`, cmd("check-override"));
  if (check !== null) {
    const ov = checkItem(check, "DRIVER_OVERRIDE");
    const early = checkItem(check, "EARLY_BINDING");
    c("check: DRIVER_OVERRIDE fails naming pci-stub", ov?.ok === false && /driver_override of 0000:00:02\.0 is "pci-stub"/.test(String(ov.message)),
      ov === null ? "no DRIVER_OVERRIDE item" : `ok=${String(ov.ok)}: ${String(ov.message)}`);
    c("check: EARLY_BINDING fails and names the override as the cause", early?.ok === false && /driver_override "pci-stub"/.test(String(early.message)),
      early === null ? "no EARLY_BINDING item" : `ok=${String(early.ok)}: ${String(early.message)}`);
    c("check: EARLY_BINDING's hint writes vfio-pci to driver_override and probes (run below)",
      String(early?.hint).includes(`echo vfio-pci | sudo tee /sys/bus/pci/devices/${E1000E_BDF}/driver_override && echo ${E1000E_BDF} | sudo tee /sys/bus/pci/drivers_probe`),
      `hint: ${String(early?.hint)}`);
  }
  const status = cliJson(report, suite, "driver_override: status --json", cmd("status-override"));
  if (status !== null) {
    const found = list(status.problems).filter((p) => String(p.message).includes(E1000E_BDF)).map((p) => `${String(p.code)}/${String(p.severity)}`);
    c(`status: DRIVER_OVERRIDE_OTHER (warning) for ${E1000E_BDF} and no other finding for it`, found.join(",") === "DRIVER_OVERRIDE_OTHER/warning", found.join(", ") || "nothing about it");
  }
  // Why the hint does not just clear the override: the first matching driver takes the device at the probe.
  const cleared = stateDriver(dir, "state-override-cleared.txt");
  c("guest: with the override cleared, drivers_probe gives it to e1000e (registered before vfio-pci)", cleared === "e1000e", `driver: ${cleared ?? "(not recorded)"}`);
  const vfio = stateDriver(dir, "state-override-vfio.txt");
  c("guest: the hint's commands (driver_override vfio-pci, drivers_probe) give it to vfio-pci", vfio === "vfio-pci", `driver: ${vfio ?? "(not recorded)"}`);
}

interface ResetProbe {
  bdf: string;
  resetFlag?: boolean;
  hotReset?: string[] | null;
  hotResetError?: string | null;
  error?: string;
}

/** What the doctor should say from what VFIO said: null (a reset of its own), RESET_BUS_ONLY or RESET_NONE. */
export function expectedResetFinding(p: ResetProbe): string | null {
  if (p.resetFlag === true) return null;
  const others = (p.hotReset ?? []).filter((b) => b !== p.bdf);
  if (p.hotReset && p.hotReset.length > 0 && others.length === 0) return null;
  return others.length > 0 ? "RESET_BUS_ONLY" : "RESET_NONE";
}

export function resetChecks(report: Report, suite: string, dir: string, tree: string, cmd: ReadCmd): void {
  const groups = cliJson(report, suite, "groups --json (reset findings)", cmd("groups"));
  const text = readText(dir, "reset-probe.json");
  if (text === null) {
    report.fail(suite, "reset: VFIO probe ran", `no reset-probe.json: ${tail(readText(dir, "reset-probe.err") ?? readText(dir, "job.log") ?? "", 3)}`);
    return;
  }
  const probes = new Map<string, ResetProbe>();
  for (const line of text.split("\n").filter((l) => l.trim() !== "")) {
    const p = parse(line);
    if (isObj(p) && typeof p.bdf === "string") probes.set(p.bdf, p as unknown as ResetProbe);
  }
  const binds = readText(dir, "vfio-bind.txt") ?? "";
  const moved = RESET_BDFS.filter((b) => new RegExp(`${b} driver=vfio-pci`).test(binds));
  report.check(suite, `guest: driver_override moved all ${RESET_BDFS.length} probed devices to vfio-pci`, moved.length === RESET_BDFS.length, binds.trim().replace(/\n/g, "; "));
  for (const bdf of RESET_BDFS) {
    const p = probes.get(bdf);
    const kernel = readText(tree, `sys/bus/pci/devices/${bdf}/reset_method`)?.trim() ?? "(no reset_method)";
    const what = `reset: ${bdf} (kernel reset_method: ${kernel})`;
    if (p === undefined || p.error !== undefined) {
      const bound = new RegExp(`${bdf} driver=(\\S*)`).exec(binds)?.[1] ?? "?";
      report.fail(suite, what, `VFIO could not be asked: ${p?.error ?? "no probe line"} (driver after the move: ${bound})`);
      continue;
    }
    const want = expectedResetFinding(p);
    const vfio = `VFIO: reset flag ${String(p.resetFlag)}, hot reset ${p.hotReset ? `resets ${p.hotReset.join(" ")}` : `unavailable (${p.hotResetError ?? "?"})`}`;
    if (groups === null) continue;
    const d = groupsDevice(groups, bdf);
    const got = codes(d?.findings).filter((x) => x === "RESET_NONE" || x === "RESET_BUS_ONLY");
    report.check(suite, `${what}: doctor says ${want ?? "no reset finding"}`, d !== null && got.join(",") === (want ?? ""),
      `doctor: ${got.join(",") || "no reset finding"}; ${vfio}`);
  }
}

function capIpcLock(limits: string): boolean | null {
  const m = /^CapEff:\s*([0-9a-f]+)/im.exec(limits);
  return m ? ((BigInt(`0x${m[1] ?? "0"}`) >> 14n) & 1n) === 1n : null;
}

/** One locked-memory mode: the wrapper did what it says, VFIO's real mapping, and the doctor's verdicts. */
function memlockMode(report: Report, suite: string, dir: string, mode: MemlockMode, cmd: ReadCmd): void {
  const c = (name: string, ok: boolean, detail: string) => report.check(suite, `memlock (${MODE_TEXT[mode]}): ${name}`, ok, detail);
  const limits = readText(dir, `limits-${mode}.txt`) ?? "";
  const soft = /^Max locked memory\s+(\S+)/m.exec(limits)?.[1] ?? null;
  const cap = capIpcLock(limits);
  const wantSoft = mode === "unlimited" ? "unlimited" : "65536";
  c("guest: the process runs with that limit and capability", soft === wantSoft && cap === (mode === "rootlow"), `limit ${soft ?? "?"}, CAP_IPC_LOCK ${String(cap)}`);
  const map = parse(readText(dir, `map-${mode}.json`) ?? "");
  const mapped = isObj(map) && typeof map.mapped === "boolean" ? map.mapped : null;
  const mapShown = mapped === null ? `no result: ${tail(readText(dir, `map-${mode}.err`) ?? JSON.stringify(map) ?? "", 3)}` : JSON.stringify(map);
  const wantMapped = mode !== "low";
  c(`guest: a ${MAP_BYTES >> 20} MiB VFIO_IOMMU_MAP_DMA ${wantMapped ? "succeeds" : "fails with ENOMEM"}`,
    mapped === wantMapped && (wantMapped || (isObj(map) && map.errno === "ENOMEM")), mapShown);
  const check = cliJson(report, suite, `memlock (${MODE_TEXT[mode]}): check --guest-memory 4M --json`, cmd(`check-mem-${mode}`));
  if (check !== null) {
    const item = checkItem(check, "MEMLOCK");
    const shown = item === null ? "no MEMLOCK item" : `ok=${String(item.ok)} ${String(item.severity)}: ${String(item.message)}`;
    c(`check: MEMLOCK ${mapped === false ? "fails (error)" : "passes"}, as the real mapping ${mapped === false ? "failed" : "succeeded"}`,
      mapped !== null && item !== null && item.ok === mapped && (mapped || item.severity === "error"), shown);
  }
  if (mode === "rootlow") return;
  const status = cliJson(report, suite, `memlock (${MODE_TEXT[mode]}): status --json`, cmd(`status-mem-${mode}`));
  if (status !== null) {
    const found = list(status.problems).filter((p) => p.code === "MEMLOCK_LIMIT_LOW");
    const shown = found.map((p) => `${String(p.severity)}: ${String(p.message)}`).join("; ") || "no MEMLOCK_LIMIT_LOW";
    c(`status: MEMLOCK_LIMIT_LOW ${mode === "low" ? "reported" : "absent"}`, mode === "low" ? found.length === 1 : found.length === 0, shown);
  }
}

export function memlockChecks(report: Report, suite: string, dir: string, cmd: ReadCmd): void {
  for (const mode of MEMLOCK_MODES) memlockMode(report, suite, dir, mode, cmd);
}
