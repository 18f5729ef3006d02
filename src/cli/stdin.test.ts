/** "-" reads standard input wherever a command takes a file: piped and redirected, named "standard input" in errors. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { corpusDir } from "../../test/support/iasl.js";
import { cli } from "../../test/support/cli.js";
import { machinePreset } from "../hw/machine-presets.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

/** Runs `iommu argv…` with `input` on a pipe, or with the file `input.file` as standard input (a redirect). */
function iommu(argv: string[], input: Buffer | string | { file: string }) {
  const args = ["--import", "tsx", "test/support/iommu-child.ts", ...argv];
  if (typeof input === "object" && "file" in input) {
    const fd = openSync(input.file, "r");
    try {
      return spawnSync(process.execPath, args, { cwd: REPO, stdio: [fd, "pipe", "pipe"], encoding: "utf8" });
    } finally {
      closeSync(fd);
    }
  }
  return spawnSync(process.execPath, args, { cwd: REPO, input, encoding: "utf8" });
}

const tmp = mkdtempSync(join(tmpdir(), "iommu-stdin-test-"));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

/** q35 as a machine file. */
function machineFile(): string {
  const file = join(tmp, "q35.json");
  writeFileSync(file, JSON.stringify({ ...machinePreset("q35"), name: "from-stdin" }));
  return file;
}

test("acpi decode - reads a table from a pipe and from a redirect, as from the file", async () => {
  const dir = corpusDir("dmar");
  const file = join(dir, readdirSync(dir).find((f) => f.endsWith(".bin"))!);
  type Decoded = { tables: { source: string }[] };
  const tables = (d: Decoded) => d.tables.map((t) => ({ ...t, source: undefined }));
  const fromFile = JSON.parse((await cli(["acpi", "decode", file, "--json"])).stdout) as Decoded;
  for (const input of [readFileSync(file), { file }]) {
    const r = iommu(["acpi", "decode", "-", "--json"], input);
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout) as Decoded;
    assert.deepEqual(tables(got), tables(fromFile));
    assert.deepEqual(got.tables.map((t) => t.source), ["standard input"]);
  }
  const empty = iommu(["acpi", "decode", "-"], "");
  assert.equal(empty.status, 2);
  assert.match(empty.stderr, /^iommu: error: standard input: empty file, no ACPI table \[ACPI_EMPTY\]\n$/);
});

test("status --snapshot - judges a snapshot piped from 'snapshot -o -'", async () => {
  const snap = await cli(["snapshot", "--sim", "q35", "-o", "-"]);
  assert.equal(snap.code, 0, snap.stderr);
  const direct = await cli(["status", "--sim", "q35", "--json"]);
  const r = iommu(["status", "--snapshot", "-", "--json"], snap.stdout);
  assert.equal(r.status, direct.code, r.stderr);
  const a = JSON.parse(r.stdout) as { ready: boolean; problems: { code: string }[] };
  const b = JSON.parse(direct.stdout) as { ready: boolean; problems: { code: string }[] };
  assert.equal(a.ready, b.ready);
  assert.deepEqual(a.problems.map((p) => p.code), b.problems.map((p) => p.code));
  const bad = iommu(["status", "--snapshot", "-"], "{");
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^iommu: error: standard input: .*not valid JSON/);
});

test("ui --snapshot - shows a snapshot piped from 'snapshot -o -'", async () => {
  const snap = await cli(["snapshot", "--root", "test/fixtures/hosts/qemu-a-intel-pt-ir", "--no-dmesg", "-o", "-"]);
  assert.equal(snap.code, 0, snap.stderr);
  const dir = join(tmp, "ui-stdin");
  const r = iommu(["ui", "--snapshot", "-", "--export", dir, "--json"], snap.stdout);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { path: join(dir, "index.html"), source: "snapshot standard input", host: "snapshot standard input", devices: 14, groups: 10, problems: 1, ready: true });
  assert.match(readFileSync(join(dir, "index.html"), "utf8"), /"source":"snapshot"/);
  const bad = iommu(["ui", "--snapshot", "-", "--export", dir], "{");
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /^iommu: error: standard input: .*not valid JSON/);
});

test("tour --machine - reads the machine once, however many stories load it", () => {
  const r = iommu(["tour", "--machine", "-", "--no-vm", "--json"], { file: machineFile() });
  assert.equal(r.status, 0, r.stderr);
  const stories = JSON.parse(r.stdout) as { id: string; runs: unknown[] }[];
  assert.ok(stories.length >= 6 && stories.every((s) => s.runs.length > 0), r.stdout.slice(0, 300));
});

test("sim boot --machine - takes a machine file on standard input", () => {
  const r = iommu(["sim", "boot", "--machine", "-", "--json"], JSON.stringify({ name: "piped" }));
  assert.equal(r.status, 0, r.stderr);
  assert.ok(JSON.parse(r.stdout));
  const bad = iommu(["sim", "boot", "--machine", "-"], '{"dmabits": 32}');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /standard input/);
});

test("walk --mem - walks a dump from a pipe (copied aside for random access) and from a redirect", () => {
  const dump = join(tmp, "zeros.bin");
  writeFileSync(dump, new Uint8Array(1 << 20));
  const argv = ["walk", "--mem", "-", "--rtaddr", "0x1000", "--bdf", "00:01.0", "--iova", "0", "--json"];
  for (const input of [readFileSync(dump), { file: dump }]) {
    const r = iommu(argv, input);
    assert.equal(r.status, 1, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { reason: number }).reason, 1);
  }
  const empty = iommu(argv, "");
  assert.equal(empty.status, 2);
  assert.match(empty.stderr, /^iommu: error: standard input: the memory dump is empty \(0 bytes\) \[DUMP_EMPTY\]/);
});
