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
