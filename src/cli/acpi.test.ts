import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli } from "../../test/support/cli.js";
import { corpusTables } from "../../test/support/iasl.js";

const dir = mkdtempSync(join(tmpdir(), "iommu-kit-cli-"));
const [dmarName, dmar] = corpusTables("dmar")[0]!;
const [, ivrs] = corpusTables("ivrs")[0]!;

function file(name: string, data: Uint8Array | string): string {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
}

/** acpidump's text format: "SIG @ 0x…" then rows of 16 bytes with a hex offset. */
function acpidumpText(tables: [string, Uint8Array][]): string {
  return tables
    .map(([sig, bytes]) => {
      const rows: string[] = [];
      for (let i = 0; i < bytes.length; i += 16) {
        const chunk = [...bytes.subarray(i, i + 16)];
        rows.push(`    ${i.toString(16).toUpperCase().padStart(4, "0")}: ${chunk.map((b) => b.toString(16).toUpperCase().padStart(2, "0")).join(" ")}`);
      }
      return `${sig} @ 0x00000000BFFE1234\n${rows.join("\n")}\n`;
    })
    .join("\n");
}

function oneLineError(r: { code: number; stdout: string; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  const first = r.stderr.split("\n")[0] ?? "";
  assert.match(first, /^iommu: error: /);
  assert.match(first, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace without --debug");
}

test("iommu --help, acpi --help and --version", async () => {
  const top = await cli(["--help"]);
  assert.equal(top.code, 0);
  assert.match(top.stdout, /acpi/);
  const acpi = await cli(["acpi", "--help"]);
  assert.equal(acpi.code, 0);
  assert.match(acpi.stdout, /decode/);
  const dec = await cli(["acpi", "decode", "--help"]);
  assert.match(dec.stdout, /Examples:/);
  const v = await cli(["--version"]);
  assert.match(v.stdout, /^iommu-kit \d+\.\d+\.\d+/);
});

test("unknown command and unknown option are usage errors", async () => {
  oneLineError(await cli(["frobnicate"]), /unknown command 'frobnicate'/);
  oneLineError(await cli(["acpi", "decode", "x", "--bogus"]), /bogus/);
});

test("decode a raw DMAR: text like iasl, and JSON with the contract's names", async () => {
  const p = file(dmarName, dmar);
  const t = await cli(["acpi", "decode", p]);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /Signature : "DMAR"/);
  assert.match(t.stdout, /Hardware Unit Definition/);
  const j = await cli(["acpi", "decode", p, "--json"]);
  const out = JSON.parse(j.stdout) as { tables: Record<string, unknown>[] };
  const table = out.tables[0]!;
  for (const k of ["signature", "length", "revision", "checksumValid", "oemId", "oemTableId", "oemRevision", "hostAddressWidth", "flags", "structures"]) {
    assert.ok(k in table, `missing ${k}`);
  }
  assert.equal(table.length, dmar.length);
});

test("acpidump text with several tables: DMAR and IVRS are picked, others ignored", async () => {
  const facp = new Uint8Array(48);
  facp.set([0x46, 0x41, 0x43, 0x50, 48]);
  const p = file("dump.txt", acpidumpText([["FACP", facp], ["DMAR", dmar], ["IVRS", ivrs]]));
  const j = await cli(["acpi", "decode", p, "--json"]);
  assert.equal(j.code, 0, j.stderr);
  const sigs = (JSON.parse(j.stdout) as { tables: { signature: string }[] }).tables.map((t) => t.signature);
  assert.deepEqual(sigs, ["DMAR", "IVRS"]);
  const only = await cli(["acpi", "decode", p, "--json", "--table", "ivrs"]);
  assert.deepEqual((JSON.parse(only.stdout) as { tables: { signature: string }[] }).tables.map((t) => t.signature), ["IVRS"]);
});

test("a sysfs-like tables directory is accepted", async () => {
  const d = join(dir, "tables");
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, "DMAR"), dmar);
  writeFileSync(join(d, "FACP"), new Uint8Array(36));
  const j = await cli(["acpi", "decode", d, "--json"]);
  assert.equal(j.code, 0, j.stderr);
  assert.equal((JSON.parse(j.stdout) as { tables: unknown[] }).tables.length, 1);
});

test("bad input: one line, exit 2, names what and where", async () => {
  oneLineError(await cli(["acpi", "decode", join(dir, "nope.bin")]), /nope\.bin: no such file/);
  oneLineError(await cli(["acpi", "decode", file("empty.bin", new Uint8Array(0))]), /empty/);
  oneLineError(await cli(["acpi", "decode", file("text.bin", "hello world, this is not a table at all....")]), /not an ACPI table/);
  oneLineError(await cli(["acpi", "decode", file("short.bin", dmar.subarray(0, 20))]), /36/);
  oneLineError(await cli(["acpi", "decode", file("trunc.bin", dmar.subarray(0, dmar.length - 5))]), /header says \d+ bytes/);
  // A structure whose length runs past the end of the table: the message names the byte offset.
  const past = Uint8Array.from(dmar);
  past[0x32] = 0xff; // first structure's length low byte
  past[0x33] = 0x0f;
  oneLineError(await cli(["acpi", "decode", file("past.bin", past)]), /offset 0x30|0x30/);
  // A zero-length structure must not loop forever.
  const zero = Uint8Array.from(dmar);
  zero[0x32] = 0;
  zero[0x33] = 0;
  oneLineError(await cli(["acpi", "decode", file("zero.bin", zero)]), /0x30/);
});

test("a wrong checksum is a warning, and the table is still decoded", async () => {
  const bad = Uint8Array.from(dmar);
  bad[9] = (bad[9]! + 1) & 0xff;
  const r = await cli(["acpi", "decode", file("badsum.bin", bad), "--json"]);
  assert.equal(r.code, 0);
  assert.match(r.stderr, /^warning: DMAR: checksum/m);
  assert.equal((JSON.parse(r.stdout) as { tables: { checksumValid: boolean }[] }).tables[0]!.checksumValid, false);
});

test("encode from decoded JSON gives back the same bytes", async () => {
  for (const [name, bytes] of [[dmarName, dmar], ["ivrs.bin", ivrs]] as const) {
    const src = file(`rt-${name}`, bytes);
    const j = await cli(["acpi", "decode", src, "--json"]);
    const json = file(`rt-${name}.json`, j.stdout);
    const out = join(dir, `rt-${name}.out`);
    const e = await cli(["acpi", "encode", json, "-o", out]);
    assert.equal(e.code, 0, e.stderr);
    assert.deepEqual(new Uint8Array(readFileSync(out)), bytes);
  }
  oneLineError(await cli(["acpi", "encode", file("junk.json", "{"), "-o", join(dir, "x")]), /not JSON/);
  oneLineError(await cli(["acpi", "encode", file("obj.json", '{"signature":"FACP"}'), "-o", join(dir, "x")]), /no DMAR or IVRS/);
});
