/**
 * Boots one Linux guest under QEMU (TCG) and runs a shell script inside it, against the guest's own kernel.
 *
 * The guest boots Debian's kernel from lab/work/kernel with the initramfs lab/work/initrd.gz (see
 * lab/guest/init). The host's root is shared read-only over 9p and the guest runs `job.sh` with the host's
 * /bin/sh inside `chroot /host`, with the guest's own /proc, /sys and /dev mounted there, so this machine's
 * node and this repository run against the guest kernel. A second, writable 9p share (the run directory,
 * /tmp/out in the guest) carries the script in and the results out.
 *
 * Every run gets lab/work/runs/NAME/: job.sh, job.log, exit-code, console.log, qemu.log (QEMU's stderr and,
 * when asked, its trace) and whatever the script wrote to $LAB_OUT.
 */
import { spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const LAB_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_DIR = resolve(LAB_DIR, "..");
export const WORK_DIR = join(LAB_DIR, "work");

export interface BootOptions {
  /** Run name: results go to lab/work/runs/NAME (emptied first). */
  name: string;
  /** QEMU arguments after the common ones (IOMMU and PCI devices, -trace, …). */
  machineArgs: string[];
  /** Appended to the kernel command line (after console=ttyS0 panic=-1 …). */
  cmdline: string;
  /** Shell script run by the host's /bin/sh inside `chroot /host`; cwd and $LAB_OUT are the output share. */
  script: string;
  /** Hard limit for the whole boot, in seconds. */
  timeoutSec: number;
  memMiB?: number;
  /** QEMU -cpu model (default: QEMU's, qemu64). */
  cpu?: string;
  smp?: number;
  /** Open a QMP socket at RUN/qmp.sock; `whileRunning` gets a client for it. */
  qmp?: boolean;
  /** Called once QEMU has started; the boot ends when the guest powers off (or `whileRunning` quits QEMU). */
  whileRunning?: (run: RunningGuest) => Promise<void>;
  /** Extra files to place in the output share before boot (name -> contents). */
  files?: Record<string, string>;
  /** Print the console to stderr as it arrives. */
  echo?: boolean;
}

export interface RunningGuest {
  outDir: string;
  /** Resolves when `file` exists in the output share (or rejects after `timeoutSec`). */
  waitForFile(file: string, timeoutSec: number): Promise<void>;
  /** Connects to QMP (qmp_capabilities already sent). */
  qmp(): Promise<Qmp>;
  /** True once QEMU has exited. */
  exited(): boolean;
}

export interface BootResult {
  name: string;
  outDir: string;
  /** The job's exit status, or null when the job did not finish. */
  jobExit: number | null;
  qemuExit: number | null;
  timedOut: boolean;
  elapsedSec: number;
  /** Seconds from QEMU start to "job start" (kernel boot + modules + mounts), when seen. */
  bootSec: number | null;
  console: string;
  /** An error from `whileRunning`, if it threw. */
  hookError: string | null;
}

export function kernelVersion(): string {
  const f = join(WORK_DIR, "kernel", "VERSION");
  if (!existsSync(f)) throw new Error("lab/work/kernel is missing: run `bash lab/setup.sh` first");
  return readFileSync(f, "utf8").trim();
}

export function kernelImage(): string {
  return join(WORK_DIR, "kernel", "boot", `vmlinuz-${kernelVersion()}`);
}

/** QEMU's version line, e.g. "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)". */
export async function qemuVersion(): Promise<string> {
  const out = await new Promise<string>((res) => {
    const p = spawn("qemu-system-x86_64", ["--version"]);
    let s = "";
    p.stdout.on("data", (d: Buffer) => (s += d.toString()));
    p.on("close", () => res(s));
    p.on("error", () => res(""));
  });
  return out.split("\n")[0] ?? "";
}

/** The last `n` lines of a text. */
export function tail(text: string, n: number): string {
  const lines = text.trimEnd().split("\n");
  return lines.slice(-n).join("\n");
}

/** Renders a failed boot for humans: what went wrong and the end of the console log. */
export function describeFailure(r: BootResult): string {
  const why = r.timedOut
    ? `timed out after ${r.elapsedSec.toFixed(0)} s`
    : r.jobExit === null
      ? `the job did not finish (QEMU exit ${r.qemuExit ?? "?"})`
      : `the job exited ${r.jobExit}`;
  return (
    `guest ${r.name}: ${why}; files in ${r.outDir}\n` +
    (r.hookError ? `  host-side step failed: ${r.hookError}\n` : "") +
    `---- last 40 console lines (${join(r.outDir, "console.log")}) ----\n${tail(r.console, 40)}\n----`
  );
}

/** The QEMU command line for a boot: the lab's q35 machine, the kernel and initramfs, and the two 9p shares. */
function qemuArgs(o: BootOptions, outDir: string, initrd: string): string[] {
  const args = [
    "-machine", "q35,kernel-irqchip=split",
    "-accel", "tcg",
    ...(o.cpu ? ["-cpu", o.cpu] : []),
    "-m", String(o.memMiB ?? 1024),
    "-smp", String(o.smp ?? 2),
    "-nodefaults", "-no-user-config", "-display", "none", "-vga", "none",
    "-serial", "stdio", "-monitor", "none", "-no-reboot",
    "-kernel", kernelImage(),
    "-initrd", initrd,
    "-append", `console=ttyS0 panic=-1 loglevel=6 ${keepArg()}${o.cmdline}`.trim(),
    ...o.machineArgs,
    "-fsdev", "local,id=fshost,path=/,security_model=none,readonly=on,multidevs=remap",
    "-device", "virtio-9p-pci,fsdev=fshost,mount_tag=hostroot,addr=0x10",
    "-fsdev", `local,id=fsout,path=${outDir},security_model=none`,
    "-device", "virtio-9p-pci,fsdev=fsout,mount_tag=labout,addr=0x11",
  ];
  if (o.qmp) args.push("-qmp", `unix:${join(outDir, "qmp.sock")},server=on,wait=off`);
  return args;
}

/** A running QEMU: its console (kept in memory and in console.log), its log, and when it exited. */
interface QemuProcess {
  exited: () => boolean;
  exit: Promise<number | null>;
  console: () => string;
  bootSec: () => number | null;
  /** Waits until the console and QEMU log files are written out. */
  flush: () => Promise<void>;
  kill: () => void;
}

function startQemu(args: string[], outDir: string, echo: boolean, started: number): QemuProcess {
  const child = spawn("qemu-system-x86_64", args, { stdio: ["pipe", "pipe", "pipe"], cwd: outDir });
  const consoleFile = createWriteStream(join(outDir, "console.log"));
  const qemuLog = createWriteStream(join(outDir, "qemu.log"));
  let consoleText = "";
  let bootSec: number | null = null;
  child.stdout.on("data", (d: Buffer) => {
    const s = d.toString("utf8");
    consoleText += s;
    consoleFile.write(d);
    if (echo) process.stderr.write(s);
    if (bootSec === null && consoleText.includes("lab: job start")) bootSec = (Date.now() - started) / 1000;
  });
  child.stderr.on("data", (d: Buffer) => qemuLog.write(d));
  let exited = false;
  const exit = new Promise<number | null>((res) => {
    child.on("exit", (code) => {
      exited = true;
      res(code);
    });
    child.on("error", (e) => {
      exited = true;
      qemuLog.write(`spawn error: ${e.message}\n`);
      res(null);
    });
  });
  return {
    exited: () => exited,
    exit,
    console: () => consoleText,
    bootSec: () => bootSec,
    flush: async () => {
      await new Promise<void>((res) => consoleFile.end(res));
      await new Promise<void>((res) => qemuLog.end(res));
    },
    kill: () => void child.kill("SIGKILL"),
  };
}

/** Runs the caller's hook while the guest runs; its error message, or null. */
async function runHook(o: BootOptions, outDir: string, qemu: QemuProcess): Promise<string | null> {
  if (!o.whileRunning) return null;
  const running: RunningGuest = {
    outDir,
    exited: qemu.exited,
    waitForFile: async (file, sec) => {
      const until = Date.now() + sec * 1000;
      while (!existsSync(join(outDir, file))) {
        if (qemu.exited()) throw new Error(`QEMU exited before ${file} appeared`);
        if (Date.now() > until) throw new Error(`${file} did not appear within ${sec} s`);
        await sleep(250);
      }
    },
    qmp: () => Qmp.connect(join(outDir, "qmp.sock")),
  };
  try {
    await o.whileRunning(running);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

export async function bootGuest(o: BootOptions): Promise<BootResult> {
  const outDir = join(WORK_DIR, "runs", o.name);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "job.sh"), o.script, { mode: 0o755 });
  for (const [f, text] of Object.entries(o.files ?? {})) writeFileSync(join(outDir, f), text);
  const initrd = join(WORK_DIR, "initrd.gz");
  if (!existsSync(initrd)) throw new Error("lab/work/initrd.gz is missing: run `bash lab/setup.sh` first");

  const args = qemuArgs(o, outDir, initrd);
  writeFileSync(join(outDir, "qemu-args.txt"), args.map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(" ") + "\n");
  const started = Date.now();
  const qemu = startQemu(args, outDir, o.echo === true, started);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    qemu.kill();
  }, o.timeoutSec * 1000);
  const hookError = await runHook(o, outDir, qemu);
  const qemuExit = await qemu.exit;
  clearTimeout(timer);
  await qemu.flush();
  const exitFile = join(outDir, "exit-code");
  const jobExit = existsSync(exitFile) ? Number(readFileSync(exitFile, "utf8").trim()) : null;
  return {
    name: o.name,
    outDir,
    jobExit: Number.isFinite(jobExit) ? jobExit : null,
    qemuExit,
    timedOut,
    elapsedSec: (Date.now() - started) / 1000,
    bootSec: qemu.bootSec(),
    console: qemu.console(),
    hookError,
  };
}

/** The guest mounts a tmpfs on /tmp: a repository under the host's /tmp must stay visible (guest/init lab.keep). */
function keepArg(): string {
  return REPO_DIR.startsWith("/tmp/") ? `lab.keep=${REPO_DIR} ` : "";
}

export function sleep(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms));
}

/** A minimal QMP client: one command at a time, events ignored. */
export class Qmp {
  private buf = "";
  private waiting: ((msg: Record<string, unknown>) => void) | null = null;
  private queue: Record<string, unknown>[] = [];

  private constructor(private readonly sock: ReturnType<typeof createConnection>) {
    sock.on("data", (d: Buffer) => {
      this.buf += d.toString("utf8");
      let nl: number;
      while ((nl = this.buf.indexOf("\n")) >= 0) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ("event" in msg) continue;
        if (this.waiting) {
          const w = this.waiting;
          this.waiting = null;
          w(msg);
        } else this.queue.push(msg);
      }
    });
  }

  static async connect(path: string): Promise<Qmp> {
    for (let i = 0; ; i++) {
      try {
        const sock = await new Promise<ReturnType<typeof createConnection>>((res, rej) => {
          const s = createConnection(path);
          s.once("connect", () => res(s));
          s.once("error", rej);
        });
        const q = new Qmp(sock);
        await q.next(); // greeting
        await q.execute("qmp_capabilities");
        return q;
      } catch (e) {
        if (i >= 40) throw new Error(`cannot connect to QMP at ${path}: ${(e as Error).message}`, { cause: e });
        await sleep(250);
      }
    }
  }

  private next(): Promise<Record<string, unknown>> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    return new Promise((res, rej) => {
      this.waiting = res;
      this.sock.once("close", () => rej(new Error("QMP connection closed")));
    });
  }

  /** Runs a command and returns its `return` value; a QMP error becomes an exception. */
  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    this.sock.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + "\n");
    const reply = await this.next();
    if ("error" in reply) throw new Error(`QMP ${command}: ${JSON.stringify(reply.error)}`);
    return reply.return;
  }

  /** A human monitor command (e.g. "xp /1gx 0xfed90020"); returns its text output. */
  async hmp(commandLine: string): Promise<string> {
    return String(await this.execute("human-monitor-command", { "command-line": commandLine }));
  }

  /** Sends `quit` and closes; QEMU exits without waiting for the guest. */
  async quit(): Promise<void> {
    this.sock.write(JSON.stringify({ execute: "quit" }) + "\n");
    await sleep(200);
    this.sock.destroy();
  }

  close(): void {
    this.sock.destroy();
  }
}
