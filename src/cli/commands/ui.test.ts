import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli } from "../../../test/support/cli.js";

const tmp = mkdtempSync(join(tmpdir(), "iommu-ui-cli-"));

test("ui --export writes one page with the machine's devices and groups, and says how many", async () => {
  const dir = join(tmp, "site");
  const r = await cli(["ui", "--export", dir, "-m", "q35", "--no-stories", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { path: string; devices: number; groups: number; stories: number };
  const html = readFileSync(summary.path, "utf8");
  const data = JSON.parse(/id="iommu-data">(.*?)<\/script>/s.exec(html)?.[1] ?? "{}") as { devices: unknown[]; groups: unknown[] };
  assert.equal(data.devices.length, summary.devices);
  assert.equal(data.groups.length, summary.groups);
  assert.equal(summary.stories, 0);
  assert.doesNotMatch(html, /<script src=|<link rel="stylesheet"|https?:\/\//, "no external resources");
});

test("ui --export -m q35-amd: the AMD-Vi unit, and each device's address space walked through its device table", async () => {
  const dir = join(tmp, "amd-site");
  const r = await cli(["ui", "--export", dir, "-m", "q35-amd", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { path: string; machine: string; devices: number; groups: number };
  assert.equal(summary.machine, "q35-amd");
  const html = readFileSync(summary.path, "utf8");
  interface Walk { result: string; reasonName?: string; levels: { table: string }[] }
  const data = JSON.parse(/id="iommu-data">(.*?)<\/script>/s.exec(html)?.[1] ?? "{}") as {
    cmdline: string;
    devices: unknown[];
    units: { name: string; base: string; amdVi?: { bdf: string } }[];
    spaces: { bdf: string; bufferPages: string[]; walks: Walk[]; msi: unknown[] }[];
  };
  assert.equal(data.devices.length, summary.devices);
  assert.equal(data.cmdline, "", "booted without intel_iommu=on");
  // q35-amd is QEMU's -device amd-iommu: registers at 0xfed80000, its PCI function at 00:01.0.
  assert.deepEqual(data.units.map((u) => [u.name, u.base, u.amdVi?.bdf]), [["ivhd0", "0xfed80000", "00:01.0"]]);
  const translated = data.spaces.filter((s) => s.bufferPages.length > 0);
  assert.ok(translated.length > 0, "address spaces of translated devices");
  for (const s of translated) {
    assert.equal(s.walks[0]?.result, "ok", `${s.bdf}: the first walk translates`);
    assert.equal(s.walks[0]?.levels[0]?.table, "device table entry", `${s.bdf}: walked from the device table`);
    const faults = s.walks.filter((w) => w.result === "fault");
    assert.deepEqual(faults.map((w) => w.reasonName), ["IO_PAGE_FAULT"], `${s.bdf}: one walk faults with the AMD-Vi event`);
    assert.ok(s.msi.length > 0, `${s.bdf}: an MSI walk`);
  }
});

test("ui: bad input is one line and exit 2", async () => {
  const port = await cli(["ui", "--port", "70000"]);
  assert.equal(port.code, 2);
  assert.match(port.stderr, /--port: '70000'/);
  const file = join(tmp, "a-file");
  writeFileSync(file, "x");
  const exp = await cli(["ui", "--export", join(file, "sub"), "--no-stories"]);
  assert.equal(exp.code, 2);
  assert.equal(exp.stderr.trim().split("\n").length <= 2, true, exp.stderr);
  assert.doesNotMatch(exp.stderr, /at .*\.ts:\d+/);
});

test("ui serving stops after --for and prints its URL as JSON", async () => {
  const r = await cli(["ui", "--no-stories", "--for", "0", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match((JSON.parse(r.stdout) as { url: string }).url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
});

test("ui --snapshot: the recorded host's devices, groups and the doctor's problems, exported and served", async () => {
  const snap = join(tmp, "noir.json");
  const rec = await cli(["snapshot", "--root", "test/fixtures/hosts/qemu-b-intel-noir", "--no-dmesg", "-o", snap]);
  assert.equal(rec.code, 0, rec.stderr);
  const dir = join(tmp, "host-site");
  const r = await cli(["ui", "--snapshot", snap, "--export", dir, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { path: string; source: string; devices: number; groups: number; problems: number; ready: boolean };
  assert.deepEqual({ ...summary, path: "" }, { path: "", source: `snapshot ${snap}`, host: "snapshot " + snap, devices: 14, groups: 10, problems: 2, ready: false });
  const html = readFileSync(summary.path, "utf8");
  const data = JSON.parse(/id="iommu-data">(.*?)<\/script>/s.exec(html)?.[1] ?? "{}") as { source: string; host: { problems: { code: string }[] }; absent: string };
  assert.equal(data.source, "snapshot");
  assert.equal(data.host.problems[0]?.code, "INTERRUPT_REMAPPING_DISABLED");
  assert.match(data.absent, /not the IOMMU's tables in memory/);
  const text = await cli(["ui", "--snapshot", snap, "--export", dir]);
  assert.equal(text.stdout, `Wrote ${join(dir, "index.html")}: 14 PCI devices, 10 groups and 2 of the doctor's findings of snapshot ${snap}.\n`);
  const served = await cli(["ui", "--snapshot", snap, "--for", "0", "--json"]);
  assert.equal(served.code, 0, served.stderr);
  assert.match((JSON.parse(served.stdout) as { url: string }).url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
});

test("ui --snapshot: with --machine, a bad file or --pci-ids without it, one line and exit 2", async () => {
  const oneLine = (r: { code: number; stderr: string }, what: RegExp): void => {
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr.split("\n")[0] ?? "", what);
    assert.ok(r.stderr.trim().split("\n").length <= 2, r.stderr);
    assert.doesNotMatch(r.stderr, /at .*\.ts:\d+|internal error/);
  };
  const junk = join(tmp, "junk.json");
  writeFileSync(junk, "{not json");
  const empty = join(tmp, "empty.json");
  writeFileSync(empty, JSON.stringify({ format: "iommu-kit-snapshot", version: 1, createdBy: "t", host: {}, entries: {} }));
  oneLine(await cli(["ui", "--snapshot", junk, "-m", "q35", "--export", join(tmp, "x")]), /--snapshot and --machine cannot be used together/);
  oneLine(await cli(["ui", "--snapshot", junk, "--export", join(tmp, "x")]), /junk\.json/);
  oneLine(await cli(["ui", "--snapshot", empty, "--export", join(tmp, "x")]), /no \/sys in snapshot .*empty\.json/);
  oneLine(await cli(["ui", "--snapshot", join(tmp, "missing.json"), "--export", join(tmp, "x")]), /missing\.json: no such snapshot file/);
  oneLine(await cli(["ui", "--pci-ids", junk, "--no-stories", "--export", join(tmp, "x")]), /--pci-ids .* needs --snapshot/);
});

test("ui --export: the page's stories and scenarios are what 'tour --json' and 'scenario NAME --json' print", async () => {
  const dir = join(tmp, "q35-full");
  const r = await cli(["ui", "--export", dir, "-m", "q35", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { path: join(dir, "index.html"), machine: "q35", devices: 13, groups: 9, stories: 11, scenarios: 5 });
  const html = readFileSync(join(dir, "index.html"), "utf8");
  const data = JSON.parse(/id="iommu-data">(.*?)<\/script>/s.exec(html)?.[1] ?? "{}") as { stories: unknown[]; scenarios: { name: string }[] };
  const tour = await cli(["tour", "-m", "q35", "--json"]);
  assert.deepEqual(data.stories, JSON.parse(tour.stdout));
  for (const s of data.scenarios) assert.deepEqual(s, JSON.parse((await cli(["scenario", s.name, "--json"])).stdout), s.name);
});
