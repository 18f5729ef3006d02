import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli } from "../../test/support/cli.js";
import { cliWithPermissions } from "../../test/support/unprivileged.js";

const FIX = "test/fixtures/bootloaders";

function copy(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `iommu-bootargs-cli-`));
  cpSync(join(FIX, name), dir, { recursive: true });
  return dir;
}

test("iommu bootargs: dry run shows the diff and changes nothing; --json carries the same plan", async () => {
  const dir = copy("grub-debian");
  try {
    const before = readFileSync(join(dir, "etc/default/grub"));
    const r = await cli(["bootargs", "--root", dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Boot loader: GRUB \(\/etc\/default\/grub\)/);
    assert.match(r.stdout, /\n\+GRUB_CMDLINE_LINUX_DEFAULT="quiet splash intel_iommu=on"\n/);
    assert.deepEqual(readFileSync(join(dir, "etc/default/grub")), before);
    const j = JSON.parse((await cli(["bootargs", "--root", dir, "--json", "--pt"])).stdout) as { proposal: { add: string[] }; regenerate: string[] };
    assert.deepEqual(j.proposal.add, ["intel_iommu=on", "iommu=pt"]);
    assert.deepEqual(j.regenerate, ["update-grub"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("iommu bootargs --apply on a root prints the regenerate command instead of running it; --undo restores", async () => {
  const dir = copy("grub-debian");
  try {
    const grub = join(dir, "etc/default/grub");
    const before = readFileSync(grub);
    const a = await cli(["bootargs", "--apply", "--root", dir]);
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stdout, /Applied: \/etc\/default\/grub \(original kept in \/etc\/default\/grub\.iommu-kit\.bak\)/);
    assert.match(a.stdout, /Not run \(--root examines another system\): run inside it:\n {2}update-grub\n/);
    assert.match(readFileSync(grub, "utf8"), /intel_iommu=on/);
    const again = await cli(["bootargs", "--apply", "--root", dir]);
    assert.equal(again.code, 0, "already applied: nothing left to change");
    assert.match(again.stdout, /Nothing to change\./);
    const u = await cli(["bootargs", "--undo", "--root", dir]);
    assert.equal(u.code, 0, u.stderr);
    assert.match(u.stdout, /Restored: \/etc\/default\/grub\n/);
    assert.deepEqual(readFileSync(grub), before);
    const u2 = await cli(["bootargs", "--undo", "--root", dir]);
    assert.equal(u2.code, 2);
    assert.match(u2.stderr, /\[NOTHING_TO_UNDO\]/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("iommu bootargs: bad input is one clear line and exit 2", async () => {
  const both = await cli(["bootargs", "--apply", "--undo"]);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /\[USAGE\]/);
  const snap = await cli(["bootargs", "--apply", "--snapshot", "x.json"]);
  assert.equal(snap.code, 2);
  assert.match(snap.stderr, /\[READ_ONLY_VIEW\]/);
  const noRoot = await cli(["bootargs", "--root", "/nonexistent/iommu-kit"]);
  assert.equal(noRoot.code, 2);
  assert.match(noRoot.stderr, /\[ROOT_NOT_FOUND\]/);
  const dir = copy("grub-debian");
  try {
    rmSync(join(dir, "etc/default/grub"));
    mkdirSync(join(dir, "etc/default/grub"));
    const isDir = await cli(["bootargs", "--root", dir]);
    assert.equal(isDir.code, 2);
    assert.match(isDir.stderr, /^iommu: error: \/etc\/default\/grub: is a directory, expected a file \[IS_A_DIRECTORY\]\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("iommu bootargs: an unreadable file says to run as root", () => {
  const dir = copy("grub-debian");
  try {
    chmodSync(join(dir, "etc/default/grub"), 0o000);
    const r = cliWithPermissions(["bootargs", "--root", dir]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\/etc\/default\/grub: permission denied \[PERMISSION_DENIED\]\nhint: run as root/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
