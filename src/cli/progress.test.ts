/** Progress on a terminal for long work: shown through the status line, never with --json or without a terminal. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PhysicalMemory } from "../core/memory.js";
import { VtdTables } from "../hw/vtd/builder.js";
import { writeDumpFile } from "../forensics/dump.js";
import { PROGRESS_EVERY } from "../forensics/progress.js";
import { runCliReporting } from "./main.js";

const dir = mkdtempSync(join(tmpdir(), "iommu-progress-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** A dump in which device 00:03.0 maps 2.5 × PROGRESS_EVERY separate pages (every other page, so none merge). */
function bigDump(): { path: string; rtaddr: string; pages: number } {
  const mem = new PhysicalMemory();
  const t = new VtdTables(mem, 0x100000);
  const d = t.domain(1, 3);
  t.attach(0x18, d);
  const pages = Math.floor(PROGRESS_EVERY * 2.5);
  for (let i = 0; i < pages; i++) t.map(d, 0x1000_0000 + i * 0x2000, 0x4000_0000 + i * 0x1000);
  const path = join(dir, "big.raw");
  writeDumpFile(mem, path, 0x4000_0000 + pages * 0x1000);
  return { path, rtaddr: "0x" + t.root.toString(16), pages };
}

async function run(argv: string[], withTerminal: boolean) {
  let stdout = "";
  let stderr = "";
  const status: string[] = [];
  const code = await runCliReporting(argv, {
    debug: false,
    env: {},
    out: (t) => void (stdout += t),
    err: (t) => void (stderr += t),
    ...(withTerminal ? { status: (t: string) => void status.push(t) } : {}),
  });
  return { code, stdout, stderr, status };
}

test("walk --list shows how many mappings it has found on a terminal, clears the line, and stays quiet otherwise", async () => {
  const { path, rtaddr, pages } = bigDump();
  const argv = ["walk", "--mem", path, "--rtaddr", rtaddr, "--bdf", "00:03.0", "--list"];
  const tty = await run(argv, true);
  assert.equal(tty.code, 0, tty.stderr);
  assert.match(tty.stdout, new RegExp(`${pages} page mappings`));
  assert.deepEqual(tty.status, [`walk --list: ${PROGRESS_EVERY} mappings so far`, `walk --list: ${2 * PROGRESS_EVERY} mappings so far`, ""]);
  assert.equal(tty.stderr, "");
  const json = await run([...argv, "--json"], true);
  assert.deepEqual(json.status, []);
  assert.equal((JSON.parse(json.stdout) as { mappings: number }).mappings, pages);
  const piped = await run(argv, false);
  assert.equal(piped.stdout, tty.stdout);
  assert.equal(piped.stderr, "");
});

test("bench reports its cases on the terminal's status line only", async () => {
  const tty = await run(["bench", "iova", "--quick"], true);
  assert.equal(tty.code, 0, tty.stderr);
  assert.ok(tty.status.length >= 2 && tty.status.slice(0, -1).every((l) => l.startsWith("bench: iova")), tty.status.join("\n"));
  assert.equal(tty.status.at(-1), "");
  assert.equal(tty.stderr, "");
  const piped = await run(["bench", "iova", "--quick"], false);
  assert.equal(piped.code, 0, piped.stderr);
  assert.equal(piped.stderr, "", "nothing extra on stderr when it is not a terminal");
});
