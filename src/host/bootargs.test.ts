import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { editArgsText, harmfulReason, proposeParams, splitArgs } from "./bootargs-params.js";
import { unifiedDiff } from "./bootargs-diff.js";
import { editGrubFiles, effectiveGrubArgs, parseGrubAssignments } from "./bootloaders/grub.js";
import { editEntryText } from "./bootloaders/systemd-boot.js";
import { planBootargs, renderBootargs } from "./bootargs.js";
import { RootView } from "./views/root-view.js";
import { IommuError } from "../core/errors.js";

const FIX = "test/fixtures/bootloaders";
const view = (name: string) => new RootView(join(FIX, name));

test("kernel command lines split on whitespace, quotes protect spaces", () => {
  assert.deepEqual(splitArgs('  quiet  dyndbg="file foo.c +p" intel_iommu=on\n'), ["quiet", 'dyndbg="file foo.c +p"', "intel_iommu=on"]);
});

test("harmful parameters are recognised, harmless ones are not", () => {
  for (const bad of ["intel_iommu=off", "intel_iommu=igfx_off,off", "amd_iommu=off", "amd_iommu=on", "iommu=off", "intremap=off", "nointremap"]) {
    assert.notEqual(harmfulReason(bad), null, bad);
  }
  for (const ok of ["intel_iommu=on", "intel_iommu=on,sm_on", "intel_iommu=igfx_off", "iommu=pt", "amd_iommu=force_isolation", "quiet"]) {
    assert.equal(harmfulReason(ok), null, ok);
  }
});

test("Intel: intel_iommu=on only when the kernel does not default it on; iommu=pt only on request", () => {
  const off = proposeParams(["quiet", "intel_iommu=off"], { vendor: "intel", intelDefaultOn: false, passthrough: false });
  assert.deepEqual(off.add, ["intel_iommu=on"]);
  assert.deepEqual(off.remove, ["intel_iommu=off"]);
  const on = proposeParams(["quiet"], { vendor: "intel", intelDefaultOn: true, passthrough: true });
  assert.deepEqual(on.add, ["iommu=pt"]);
  assert.match(on.notes.join("\n"), /CONFIG_INTEL_IOMMU_DEFAULT_ON=y/);
  const already = proposeParams(["intel_iommu=on,sm_on", "iommu=pt"], { vendor: "intel", intelDefaultOn: false, passthrough: true });
  assert.deepEqual(already.add, []);
  assert.deepEqual(already.remove, []);
});

test("AMD: never proposes amd_iommu=on and removes it when present", () => {
  const p = proposeParams(["amd_iommu=on", "quiet", "iommu=off"], { vendor: "amd", intelDefaultOn: null, passthrough: false });
  assert.deepEqual(p.add, []);
  assert.deepEqual(p.remove, ["amd_iommu=on", "iommu=off"]);
});

test("editArgsText removes and appends without disturbing other spacing", () => {
  assert.equal(editArgsText("quiet  intel_iommu=off splash", ["intel_iommu=off"], ["intel_iommu=on"]), "quiet splash intel_iommu=on");
  assert.equal(editArgsText("intel_iommu=off quiet", ["intel_iommu=off"], []), "quiet");
  assert.equal(editArgsText("", [], ["a", "b"]), "a b");
  assert.equal(editArgsText("quiet \n", [], ["x"]), "quiet x \n");
});

test("unified diff matches diff -u", (t) => {
  const a = "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n";
  const b = "one\ntwo\nTHREE\nfour\nfive\nsix\nseven\neight\nnine\nten\neleven";
  const ours = unifiedDiff("/etc/x", a, b);
  assert.equal(
    ours,
    "--- a/etc/x\n+++ b/etc/x\n@@ -1,6 +1,6 @@\n one\n two\n-three\n+THREE\n four\n five\n six\n@@ -8,3 +8,4 @@\n eight\n nine\n ten\n+eleven\n\\ No newline at end of file\n",
  );
  assert.equal(unifiedDiff("/etc/x", a, a), "");
  const probe = spawnSync("diff", ["--version"]);
  if (probe.status !== 0) {
    t.skip("diff(1) not installed");
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "iommu-diff-"));
  try {
    writeFileSync(join(dir, "a"), a);
    writeFileSync(join(dir, "b"), b);
    const r = spawnSync("diff", ["-u", "--label", "a/etc/x", "--label", "b/etc/x", "a", "b"], { cwd: dir, encoding: "utf8" });
    assert.equal(ours, r.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("GRUB assignments: every quoting style parses; comments and other lines survive an edit", () => {
  const text = [
    "# comment GRUB_CMDLINE_LINUX=\"ignored\"",
    "GRUB_CMDLINE_LINUX_DEFAULT='quiet intel_iommu=off'  # keep me",
    "export GRUB_CMDLINE_LINUX=nomodeset",
    'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT splash"',
    "",
  ].join("\n");
  const as = parseGrubAssignments("/etc/default/grub", text);
  assert.deepEqual(
    as.map((a) => [a.line, a.name, a.quote, a.value]),
    [
      [1, "GRUB_CMDLINE_LINUX_DEFAULT", "'", "quiet intel_iommu=off"],
      [2, "GRUB_CMDLINE_LINUX", "", "nomodeset"],
      [3, "GRUB_CMDLINE_LINUX_DEFAULT", '"', "$GRUB_CMDLINE_LINUX_DEFAULT splash"],
    ],
  );
  assert.deepEqual(effectiveGrubArgs(as), ["nomodeset", "quiet", "intel_iommu=off", "splash"]);
  const [edit] = editGrubFiles([{ path: "/etc/default/grub", text }], { add: ["intel_iommu=on", "iommu=pt"], remove: ["intel_iommu=off"] });
  assert.equal(
    edit?.after,
    [
      "# comment GRUB_CMDLINE_LINUX=\"ignored\"",
      "GRUB_CMDLINE_LINUX_DEFAULT='quiet'  # keep me",
      "export GRUB_CMDLINE_LINUX=nomodeset",
      'GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT splash intel_iommu=on iommu=pt"',
      "",
    ].join("\n"),
  );
});

test("GRUB: an unquoted value gains quotes when it needs them; a missing variable is appended", () => {
  const [e1] = editGrubFiles([{ path: "/g", text: "GRUB_CMDLINE_LINUX=\nGRUB_TIMEOUT=5\n" }], { add: ["intel_iommu=on", "iommu=pt"], remove: [] });
  assert.equal(e1?.after, 'GRUB_CMDLINE_LINUX="intel_iommu=on iommu=pt"\nGRUB_TIMEOUT=5\n');
  const [e2] = editGrubFiles([{ path: "/g", text: "GRUB_TIMEOUT=5" }], { add: ["intel_iommu=on"], remove: [] });
  assert.equal(e2?.after, 'GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX="intel_iommu=on"\n');
});

test("GRUB: the assignment that takes effect last gets the additions, even in grub.d", () => {
  const edits = editGrubFiles(
    [
      { path: "/etc/default/grub", text: 'GRUB_CMDLINE_LINUX_DEFAULT="quiet iommu=off"\n' },
      { path: "/etc/default/grub.d/50-cloudimg-settings.cfg", text: 'GRUB_CMDLINE_LINUX_DEFAULT="console=tty1"\n' },
    ],
    { add: ["intel_iommu=on"], remove: ["iommu=off"] },
  );
  assert.deepEqual(
    edits.map((e) => [e.path, e.after]),
    [
      ["/etc/default/grub", 'GRUB_CMDLINE_LINUX_DEFAULT="quiet"\n'],
      ["/etc/default/grub.d/50-cloudimg-settings.cfg", 'GRUB_CMDLINE_LINUX_DEFAULT="console=tty1 intel_iommu=on"\n'],
    ],
  );
});

test("GRUB: lines it cannot edit safely are refused with the line number", () => {
  assert.throws(
    () => parseGrubAssignments("/etc/default/grub", 'A=1\nGRUB_CMDLINE_LINUX="quiet\n  splash"\n'),
    (e: unknown) => e instanceof IommuError && e.code === "BOOTARGS_UNPARSEABLE" && /grub:2:/.test(e.message),
  );
  assert.throws(
    () => parseGrubAssignments("/g", 'GRUB_CMDLINE_LINUX="a"" b"\n'),
    (e: unknown) => e instanceof IommuError && e.code === "BOOTARGS_UNPARSEABLE",
  );
});

test("systemd-boot entry: options edited, other keys untouched, no duplicate additions", () => {
  const entry = "title Arch\nlinux /vmlinuz-linux\noptions root=/dev/sda2 amd_iommu=on\noptions quiet\n";
  assert.equal(
    editEntryText(entry, { add: ["iommu=pt", "quiet"], remove: ["amd_iommu=on"] }),
    "title Arch\nlinux /vmlinuz-linux\noptions root=/dev/sda2\noptions quiet iommu=pt\n",
  );
});

test("plan on a Debian GRUB root: diff, intel_iommu=off replaced, update-grub", () => {
  const r = planBootargs(view("grub-debian"));
  assert.equal(r.bootloader.id, "grub");
  assert.equal(r.vendor, "intel");
  assert.equal(r.kernel.intelDefaultOn, false);
  assert.deepEqual(r.currentArgs, ["console=ttyS0,115200n8", "quiet", "intel_iommu=off", "splash"]);
  assert.deepEqual(r.proposal.add, ["intel_iommu=on"]);
  assert.deepEqual(r.proposal.remove, ["intel_iommu=off"]);
  assert.deepEqual(r.regenerate, ["update-grub"]);
  assert.equal(r.files.length, 1);
  assert.equal(
    r.files[0]?.diff,
    [
      "--- a/etc/default/grub",
      "+++ b/etc/default/grub",
      "@@ -6,7 +6,7 @@",
      " GRUB_DEFAULT=0",
      " GRUB_TIMEOUT=5",
      " GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`",
      '-GRUB_CMDLINE_LINUX_DEFAULT="quiet intel_iommu=off splash"',
      '+GRUB_CMDLINE_LINUX_DEFAULT="quiet splash intel_iommu=on"',
      " GRUB_CMDLINE_LINUX='console=ttyS0,115200n8'",
      " ",
      " # Uncomment to enable BadRAM filtering, modify to suit your needs",
      "",
    ].join("\n"),
  );
  const text = renderBootargs(r);
  assert.match(text, /- intel_iommu=off {2}disables the Intel IOMMU/);
  assert.match(text, /Then regenerate the boot menu: update-grub/);
});

test("plan on systemd-boot (AMD): amd_iommu=on removed from cmdline and Linux entries only", () => {
  const r = planBootargs(view("systemd-boot"), { passthrough: true });
  assert.equal(r.bootloader.id, "systemd-boot");
  assert.equal(r.vendor, "amd");
  assert.deepEqual(r.proposal.remove, ["amd_iommu=on"]);
  assert.deepEqual(r.proposal.add, ["iommu=pt"]);
  assert.deepEqual(
    r.files.map((f) => f.path),
    ["/etc/kernel/cmdline", "/boot/loader/entries/arch-fallback.conf", "/boot/loader/entries/arch.conf"],
  );
  assert.equal(r.regenerate, null);
  assert.match(r.files[2]?.diff ?? "", /\+options root=PARTUUID=1f2e-03 rw quiet iommu=pt\n/);
});

test("plan on command-driven boot loaders: exact commands and their inverses", () => {
  const ks = planBootargs(view("kernelstub"));
  assert.equal(ks.bootloader.id, "kernelstub");
  assert.deepEqual(ks.currentArgs, ["quiet", "loglevel=0", "systemd.show_status=false", "splash"]);
  assert.deepEqual(ks.commands, [["kernelstub", "--add-options", "intel_iommu=on"]]);
  assert.deepEqual(ks.undoCommands, [["kernelstub", "--delete-options", "intel_iommu=on"]]);

  const gb = planBootargs(view("fedora-grubby"), { passthrough: true });
  assert.equal(gb.bootloader.id, "grubby");
  assert.deepEqual(gb.commands, [["grubby", "--update-kernel=ALL", "--args=intel_iommu=on iommu=pt"]]);
  assert.deepEqual(gb.undoCommands, [["grubby", "--update-kernel=ALL", "--remove-args=intel_iommu=on iommu=pt"]]);
  assert.match(renderBootargs(gb), /grubby --update-kernel=ALL '--args=intel_iommu=on iommu=pt'/);

  const os = planBootargs(view("ostree"));
  assert.equal(os.bootloader.id, "rpm-ostree");
  assert.deepEqual(os.commands, [["rpm-ostree", "kargs", "--delete=iommu=off"]]);
  assert.deepEqual(os.undoCommands, [["rpm-ostree", "kargs", "--append=iommu=off"]]);
});

test("--bootloader overrides detection; nothing to change says so; unknown boot loader is a clear error", () => {
  const ks = planBootargs(view("fedora-grubby"), { bootloader: "rpm-ostree" });
  assert.equal(ks.bootloader.id, "rpm-ostree");
  const done = mkdtempSync(join(tmpdir(), "iommu-done-"));
  try {
    cpSync(join(FIX, "grub-debian"), done, { recursive: true });
    writeFileSync(join(done, "etc/default/grub"), 'GRUB_CMDLINE_LINUX_DEFAULT="quiet intel_iommu=on"\n');
    const r = planBootargs(new RootView(done));
    assert.equal(r.changed, false);
    assert.deepEqual(r.files, []);
    assert.match(renderBootargs(r), /Nothing to change\./);
  } finally {
    rmSync(done, { recursive: true, force: true });
  }
  const empty = mkdtempSync(join(tmpdir(), "iommu-noboot-"));
  try {
    assert.throws(() => planBootargs(new RootView(empty)), (e: unknown) => e instanceof IommuError && e.code === "BOOTLOADER_UNKNOWN");
    assert.throws(() => planBootargs(new RootView(empty), { bootloader: "lilo" }), (e: unknown) => e instanceof IommuError && e.code === "USAGE");
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

test("a kernel built with CONFIG_INTEL_IOMMU_DEFAULT_ON=y gets no intel_iommu=on; without /proc the newest config counts", () => {
  const dir = mkdtempSync(join(tmpdir(), "iommu-defon-"));
  try {
    cpSync(join(FIX, "grub-debian"), dir, { recursive: true });
    writeFileSync(join(dir, "boot/config-6.1.0-18-amd64"), "CONFIG_INTEL_IOMMU=y\nCONFIG_INTEL_IOMMU_DEFAULT_ON=y\n");
    const r = planBootargs(new RootView(dir));
    assert.equal(r.kernel.intelDefaultOn, true);
    assert.equal(r.kernel.configPath, "/boot/config-6.1.0-18-amd64");
    assert.deepEqual(r.proposal.add, []);
    assert.deepEqual(r.proposal.remove, ["intel_iommu=off"]);
    rmSync(join(dir, "proc"), { recursive: true });
    writeFileSync(join(dir, "boot/config-6.10.3-amd64"), "# CONFIG_INTEL_IOMMU_DEFAULT_ON is not set\n");
    const img = planBootargs(new RootView(dir));
    assert.equal(img.kernel.release, "6.10.3-amd64", "6.10 sorts after 6.1.0");
    assert.equal(img.kernel.intelDefaultOn, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
