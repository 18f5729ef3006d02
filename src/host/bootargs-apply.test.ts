import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IommuError } from "../core/errors.js";
import { applyBootargs, JOURNAL_PATH, undoBootargs, type ApplyStep, type Runner } from "./bootargs-apply.js";
import { planBootargsEdits } from "./bootargs.js";
import { RootView } from "./views/root-view.js";

const FIX = "test/fixtures/bootloaders";

function copyFixture(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `iommu-bootargs-${name}-`));
  cpSync(join(FIX, name), dir, { recursive: true });
  return dir;
}

const isCode = (code: string) => (e: unknown) => e instanceof IommuError && e.code === code;

function recorder(status = 0): { run: Runner; calls: string[][] } {
  const calls: string[][] = [];
  return { calls, run: (argv) => (calls.push([...argv]), { status, stdout: "", stderr: status ? "grub-mkconfig: error: boom\n" : "" }) };
}

test("apply rewrites /etc/default/grub with a backup and journal; undo restores identical bytes", () => {
  const dir = copyFixture("grub-debian");
  try {
    const grub = join(dir, "etc/default/grub");
    chmodSync(grub, 0o600);
    const original = readFileSync(grub);
    const view = new RootView(dir);
    const { plan } = planBootargsEdits(view);
    const r = applyBootargs(plan, { root: view, execute: false });
    assert.equal(r.changed, true);
    assert.deepEqual(r.pending, [["update-grub"]]);
    const after = readFileSync(grub, "utf8");
    assert.match(after, /^GRUB_CMDLINE_LINUX_DEFAULT="quiet splash intel_iommu=on"$/m);
    assert.equal(after.replace("quiet splash intel_iommu=on", "quiet intel_iommu=off splash"), original.toString("utf8"));
    assert.equal(statSync(grub).mode & 0o777, 0o600, "mode kept");
    assert.deepEqual(readFileSync(grub + ".iommu-kit.bak"), original);
    const journal = JSON.parse(readFileSync(join(dir, JOURNAL_PATH), "utf8")) as { state: string; files: Array<{ path: string }> };
    assert.equal(journal.state, "applied");
    assert.deepEqual(journal.files.map((f) => f.path), ["/etc/default/grub"]);
    assert.deepEqual(readdirSync(join(dir, "etc/default")).sort(), ["grub", "grub.iommu-kit.bak"], "no temp files left");

    assert.throws(() => applyBootargs(plan, { root: view, execute: false }), isCode("BOOTARGS_PENDING"));

    const u = undoBootargs({ root: view, execute: false });
    assert.equal(u.changed, true);
    assert.deepEqual(u.pending, [["update-grub"]]);
    assert.deepEqual(readFileSync(grub), original);
    assert.equal(statSync(grub).mode & 0o777, 0o600);
    assert.equal(existsSync(grub + ".iommu-kit.bak"), false);
    assert.equal(existsSync(join(dir, JOURNAL_PATH)), false);
    assert.throws(() => undoBootargs({ root: view, execute: false }), isCode("NOTHING_TO_UNDO"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("with execute, apply and undo run the regenerate command; a failing command is a clear error", () => {
  const dir = copyFixture("grub-debian");
  try {
    const view = new RootView(dir);
    const { plan } = planBootargsEdits(view);
    const ok = recorder();
    applyBootargs(plan, { root: view, execute: true, run: ok.run });
    assert.deepEqual(ok.calls, [["update-grub"]]);
    const bad = recorder(1);
    assert.throws(
      () => undoBootargs({ root: view, execute: true, run: bad.run }),
      (e: unknown) => isCode("COMMAND_FAILED")(e) && /'update-grub' failed: exit status 1: grub-mkconfig: error: boom/.test((e as Error).message),
    );
    // the file is restored already; finishing the undo once the command works removes the journal
    const again = recorder();
    undoBootargs({ root: view, execute: true, run: again.run });
    assert.deepEqual(again.calls, [["update-grub"]]);
    assert.deepEqual(readFileSync(join(dir, "etc/default/grub")), readFileSync(join(FIX, "grub-debian/etc/default/grub")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("undo refuses to overwrite a file changed since the apply, unless forced", () => {
  const dir = copyFixture("grub-debian");
  try {
    const view = new RootView(dir);
    applyBootargs(planBootargsEdits(view).plan, { root: view, execute: false });
    writeFileSync(join(dir, "etc/default/grub"), "GRUB_TIMEOUT=1\n");
    assert.throws(() => undoBootargs({ root: view, execute: false }), isCode("BOOTARGS_MODIFIED"));
    undoBootargs({ root: view, execute: false, force: true });
    assert.deepEqual(readFileSync(join(dir, "etc/default/grub")), readFileSync(join(FIX, "grub-debian/etc/default/grub")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a failure after the temp file is written and before the rename leaves the target intact and undoable", () => {
  const dir = copyFixture("grub-debian");
  try {
    const grub = join(dir, "etc/default/grub");
    const original = readFileSync(grub);
    const view = new RootView(dir);
    const { plan } = planBootargsEdits(view);
    const boom = (at: ApplyStep) => ({
      step(name: ApplyStep) {
        if (name === at) throw new Error(`injected failure at ${at}`);
      },
    });
    assert.throws(() => applyBootargs(plan, { root: view, execute: false, hooks: boom("temp-written") }), /injected failure at temp-written/);
    assert.deepEqual(readFileSync(grub), original);
    assert.deepEqual(readdirSync(join(dir, "etc/default")).sort(), ["grub", "grub.iommu-kit.bak"], "temp file removed");
    assert.equal(existsSync(join(dir, JOURNAL_PATH)), true, "journal written before the target");
    undoBootargs({ root: view, execute: false });
    assert.deepEqual(readFileSync(grub), original);

    assert.throws(() => applyBootargs(plan, { root: view, execute: false, hooks: boom("backup-written") }), /injected failure/);
    assert.deepEqual(readFileSync(grub), original);
    assert.equal(existsSync(join(dir, JOURNAL_PATH)), false, "no journal before every backup is safe");
    // a stale backup does not block the next apply
    const r = applyBootargs(plan, { root: view, execute: false });
    assert.equal(r.changed, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function runChild(root: string, step: ApplyStep): Promise<{ signal: NodeJS.Signals | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "test/support/bootargs-crash-child.ts", root, step], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (_code, signal) => (signal === null && stderr ? reject(new Error(stderr)) : resolve({ signal, stdout })));
  });
}

test("SIGKILL between steps never leaves a truncated or partial file, and undo restores the original", async () => {
  // before the target is touched, between temp file and rename, and after the rename (before the journal says so)
  const steps: ApplyStep[] = ["journal-written", "temp-written", "renamed"];
  const original = readFileSync(join(FIX, "grub-debian/etc/default/grub"));
  const dirs = steps.map(() => copyFixture("grub-debian"));
  try {
    const results = await Promise.all(steps.map((s, i) => runChild(dirs[i]!, s)));
    for (const [i, step] of steps.entries()) {
      const dir = dirs[i]!;
      assert.equal(results[i]!.signal, "SIGKILL", `child killed at ${step}`);
      assert.equal(results[i]!.stdout, "", `child did not finish at ${step}`);
      const grub = join(dir, "etc/default/grub");
      const now = readFileSync(grub, "utf8");
      const applied = original.toString("utf8").replace("quiet intel_iommu=off splash", "quiet splash intel_iommu=on");
      assert.ok(now === original.toString("utf8") || now === applied, `${step}: target is whole (old or new)`);
      const expectNew = step === "renamed";
      assert.equal(now === applied, expectNew, `${step}: ${expectNew ? "new" : "old"} contents`);
      const view = new RootView(dir);
      if (existsSync(join(dir, JOURNAL_PATH))) undoBootargs({ root: view, execute: false });
      assert.deepEqual(readFileSync(grub), original, `${step}: original bytes after undo`);
      assert.deepEqual(
        readdirSync(join(dir, "etc/default")).filter((n) => n.startsWith(".")),
        step === "temp-written" ? [".grub.iommu-kit.tmp"] : [],
        `${step}: only a kill between write and rename leaves a temp file`,
      );
      // and the next apply succeeds over whatever the kill left behind
      assert.equal(applyBootargs(planBootargsEdits(view).plan, { root: view, execute: false }).changed, true);
      assert.equal(readFileSync(grub, "utf8"), applied);
    }
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
});

test("systemd-boot: several files change together and come back together", () => {
  const dir = copyFixture("systemd-boot");
  try {
    const files = ["etc/kernel/cmdline", "boot/loader/entries/arch.conf", "boot/loader/entries/arch-fallback.conf", "boot/loader/entries/windows.conf"];
    const before = files.map((f) => readFileSync(join(dir, f)));
    const view = new RootView(dir);
    const r = applyBootargs(planBootargsEdits(view, { passthrough: true }).plan, { root: view, execute: false });
    assert.equal(r.files.length, 3);
    assert.deepEqual(r.pending, []);
    assert.equal(readFileSync(join(dir, files[0]!), "utf8"), "root=PARTUUID=1f2e-03 rw quiet iommu=pt\n");
    assert.deepEqual(readFileSync(join(dir, files[3]!)), before[3], "Windows entry untouched");
    undoBootargs({ root: view, execute: false });
    files.forEach((f, i) => assert.deepEqual(readFileSync(join(dir, f)), before[i], f));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("grubby: the command runs on apply, its inverse on undo; under --root both are only reported", () => {
  const dir = copyFixture("fedora-grubby");
  try {
    const view = new RootView(dir);
    const { plan } = planBootargsEdits(view);
    const dry = applyBootargs(plan, { root: view, execute: false });
    assert.deepEqual(dry.pending, [["grubby", "--update-kernel=ALL", "--args=intel_iommu=on"]]);
    assert.equal(existsSync(join(dir, JOURNAL_PATH)), false);
    const rec = recorder();
    applyBootargs(plan, { root: view, execute: true, run: rec.run });
    undoBootargs({ root: view, execute: true, run: rec.run });
    assert.deepEqual(rec.calls, [
      ["grubby", "--update-kernel=ALL", "--args=intel_iommu=on"],
      ["grubby", "--update-kernel=ALL", "--remove-args=intel_iommu=on"],
    ]);
    const failing = recorder(1);
    assert.throws(() => applyBootargs(plan, { root: view, execute: true, run: failing.run }), isCode("COMMAND_FAILED"));
    assert.equal(existsSync(join(dir, JOURNAL_PATH)), false, "a failed command is not recorded");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a journal from a newer version or a tampered backup is refused", () => {
  const dir = copyFixture("grub-debian");
  try {
    const view = new RootView(dir);
    applyBootargs(planBootargsEdits(view).plan, { root: view, execute: false });
    writeFileSync(join(dir, "etc/default/grub.iommu-kit.bak"), "tampered\n");
    assert.throws(() => undoBootargs({ root: view, execute: false }), isCode("BACKUP_MISMATCH"));
    const jpath = join(dir, JOURNAL_PATH);
    writeFileSync(jpath, readFileSync(jpath, "utf8").replace('"version": 1', '"version": 9'));
    assert.throws(() => undoBootargs({ root: view, execute: false }), isCode("JOURNAL_VERSION"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
