/**
 * The oracles' guest: Linux on q35 with one IOMMU device and three DMA-capable devices (e1000e, virtio-net with
 * iommu_platform, NVMe) driven by lab/guest/oracle-job.sh, QEMU tracing the IOMMU's events. When the job has done
 * its DMA the guest is paused, the IOMMU's registers are read over QMP and all of RAM is dumped.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { bootGuest, REPO_DIR, WORK_DIR, type BootResult, type Qmp } from "./qemu.js";
import { nvmeImage } from "./scenarios.js";

export interface DmaGuestOptions<R> {
  /** Run name: lab/work/runs/NAME. */
  name: string;
  memMiB: number;
  cmdline: string;
  /** The IOMMU, e.g. "intel-iommu,intremap=on" or "amd-iommu,intremap=on". */
  iommuDevice: string;
  /** QEMU trace events to record into trace.log. */
  traces: string[];
  /** Reads the IOMMU's registers while the guest is paused. */
  readRegisters: (q: Qmp) => Promise<R>;
  timeoutSec?: number;
  echo: boolean;
}

export interface DmaGuestRun<R> {
  boot: BootResult;
  outDir: string;
  dumpPath: string;
  /** The registers, or null when the guest never got to the pause (boot.hookError says why). */
  regs: R | null;
}

export async function runDmaGuest<R>(o: DmaGuestOptions<R>): Promise<DmaGuestRun<R>> {
  const outDir = join(WORK_DIR, "runs", o.name);
  const dumpPath = join(outDir, "mem.raw");
  const timeoutSec = o.timeoutSec ?? 300;
  let regs: R | null = null;
  const boot = await bootGuest({
    name: o.name,
    memMiB: o.memMiB,
    cmdline: o.cmdline,
    machineArgs: [
      "-device", o.iommuDevice,
      "-netdev", "user,id=n0", "-device", "e1000e,netdev=n0,addr=0x2,romfile=",
      "-netdev", "user,id=n1",
      "-device", "virtio-net-pci,netdev=n1,addr=0x3,iommu_platform=on,disable-legacy=on,romfile=",
      "-drive", `file=${nvmeImage()},if=none,format=raw,id=d0,readonly=on`, "-device", "nvme,serial=lab0001,drive=d0,addr=0x4",
      ...o.traces.flatMap((e) => ["-trace", e]),
      "-D", join(outDir, "trace.log"),
    ],
    script: `exec /bin/sh '${join(REPO_DIR, "lab", "guest", "oracle-job.sh")}'\n`,
    timeoutSec,
    qmp: true,
    echo: o.echo,
    whileRunning: async (g) => {
      await g.waitForFile("dma-done", timeoutSec - 10);
      const q = await g.qmp();
      await q.execute("stop");
      regs = await o.readRegisters(q);
      await q.execute("pmemsave", { val: 0, size: o.memMiB * 1024 * 1024, filename: dumpPath });
      await q.quit();
    },
  });
  const got = regs as R | null;
  return { boot, outDir, dumpPath, regs: boot.hookError === null && existsSync(dumpPath) ? got : null };
}

/** Runs `iommu ARGS` in this process through the built CLI (dist/), capturing its output. */
export type CliRunner = (argv: string[]) => Promise<{ code: number; out: string; err: string }>;

/** The built CLI (dist/cli/main.js), or null when the project is not built. */
export async function loadCli(): Promise<CliRunner | null> {
  const main = join(REPO_DIR, "dist", "cli", "main.js");
  if (!existsSync(main)) return null;
  const mod = (await import(pathToFileURL(main).href)) as {
    runCliReporting?: (argv: string[], ctx: { debug: boolean; env: Record<string, string | undefined>; out(t: string): void; err(t: string): void }) => Promise<number>;
  };
  const run = mod.runCliReporting;
  if (typeof run !== "function") return null;
  return async (argv) => {
    let out = "";
    let err = "";
    const code = await run(argv, { debug: false, env: process.env, out: (t) => (out += t), err: (t) => (err += t) });
    return { code, out, err };
  };
}
