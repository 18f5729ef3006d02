/** Ordinary mistakes and plumbing, each as a user meets it: one clear line, a documented exit status. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli } from "../../test/support/cli.js";
import { corpusDir } from "../../test/support/iasl.js";
import { runCliReporting } from "./main.js";

const tmp = mkdtempSync(join(tmpdir(), "iommu-hardening-"));
const file = (name: string, text: string): string => {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
};

function oneError(r: { code: number; stdout: string; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stdout, "");
  const lines = r.stderr.trimEnd().split("\n");
  assert.ok(lines.length <= 2, `one error line and at most a hint: ${r.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(r.stderr, /internal error|at .*\.ts:\d+/);
}

test("unknown options: one line naming the option, with the closest known one", async () => {
  oneError(await cli(["status", "--bogus"]), /^iommu: error: unknown option '--bogus' \[USAGE\]$/);
  const near = await cli(["status", "--jsn"]);
  oneError(near, /unknown option '--jsn'/);
  assert.match(near.stderr, /hint: did you mean '--json'\?/);
  oneError(await cli(["groups", "-Z"]), /unknown option '-Z'/);
  oneError(await cli(["walk", "--iova"]), /option '--iova' needs a value/);
});

test("numbers: a negative or malformed address is named as such, not 'argument is ambiguous'", async () => {
  const dump = file("dump.bin", "x".repeat(4096));
  const r = await cli(["walk", "--mem", dump, "--rtaddr", "0x1000", "--bdf", "00:02.0", "--iova", "-5"]);
  oneError(r, /--iova: '-5' is not a hexadecimal number/);
});

test("machines and snapshots: an unknown name lists the presets; a directory is not a snapshot", async () => {
  const r = await cli(["status", "--sim", "nosuch"]);
  oneError(r, /nosuch: no such file, and not a machine preset/);
  assert.match(r.stderr, /presets: q35, /);
  oneError(await cli(["status", "--snapshot", tmp]), /is a directory, expected a snapshot file \[IS_A_DIRECTORY\]/);
});

test("machine files are validated strictly: unknown keys are named with their path and the key meant", async () => {
  const cases: [object, RegExp][] = [
    [{ iommu: [] }, /: iommu: unknown key \(did you mean 'iommus'\?\)/],
    [{ iommus: [{ interruptRemaping: false }] }, /iommus\[0\]\.interruptRemaping: unknown key \(did you mean 'interruptRemapping'\?\)/],
    [{ devices: [{ bdf: "00:02.0", dmabits: 32 }] }, /devices\[0\]\.dmabits: unknown key \(did you mean 'dmaBits'\?\)/],
    [{ ram: { size: "4G", below4G: "2G" } }, /ram\.below4G: unknown key \(did you mean 'below4g'\?\)/],
  ];
  for (const [json, pattern] of cases) {
    oneError(await cli(["status", "--sim", file("m.json", JSON.stringify(json))]), pattern);
  }
  oneError(await cli(["sim", "boot", "--machine", file("null.json", "null")]), /expected a JSON object, not null/);
  oneError(await cli(["sim", "boot", "--machine", file("list.json", "[]")]), /expected a JSON object, not a list/);
});

test("acpi encode: null is refused clearly; - reads stdin-less files and -o - writes the bytes; --json reports the file", async () => {
  oneError(await cli(["acpi", "encode", file("n.json", "null"), "-o", join(tmp, "o.bin")]), /expected a table object .* not null \[BAD_JSON\]/);
  const corpus = corpusDir("dmar");
  const bin = join(corpus, readdirSync(corpus).find((f) => f.endsWith(".bin"))!);
  const dec = await cli(["acpi", "decode", bin, "--json"]);
  const json = file("dmar.json", dec.stdout);
  const chunks: Uint8Array[] = [];
  const code = await runCliReporting(["acpi", "encode", json, "-o", "-"], { debug: false, env: {}, out: () => {}, err: () => {}, outBytes: (b) => void chunks.push(b) });
  assert.equal(code, 0);
  assert.deepEqual(Buffer.concat(chunks), readFileSync(bin), "the bytes on stdout are the table");
  const j = await cli(["acpi", "encode", json, "-o", join(tmp, "x.bin"), "--json"]);
  assert.equal(j.code, 0, j.stderr);
  const info = JSON.parse(j.stdout) as { signature: string; length: number };
  assert.equal(info.signature, "DMAR");
  assert.equal(info.length, readFileSync(bin).length);
  oneError(await cli(["acpi", "encode", json, "-o", "-", "--json"]), /--json and -o - both write to standard output/);
});

test("snapshot --json describes what was written", async () => {
  const out = join(tmp, "snap.json");
  const r = await cli(["snapshot", "--sim", "q35", "-o", out, "--json", "--no-dmesg"]);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout) as { file: string; entries: number; bytes: number };
  assert.equal(info.file, out);
  assert.equal(info.bytes, readFileSync(out).length);
  assert.ok(info.entries > 0);
});

test("a closed pipe ends the command quietly (exit status 141, as SIGPIPE), no stack trace", async () => {
  const child = spawn(process.execPath, ["--import", "tsx", "test/support/iommu-child.ts", "tour", "--no-vm", "-m", "q35-noiommu"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdout.once("data", () => child.stdout.destroy()); // the reader takes a little and goes away
  const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
  assert.equal(code, 141, stderr);
  assert.doesNotMatch(stderr, /EPIPE|Error|at /);
});
