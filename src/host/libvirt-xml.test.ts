import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostdevXml, qemuArgs } from "./libvirt-xml.js";
import { resolveTargets } from "./bind-targets.js";
import { RootView } from "./views/root-view.js";
import { cli } from "../../test/support/cli.js";

const INTEL = "test/fixtures/hosts/intel-ready";

test("hostdev XML carries the address in libvirt's hex widths", () => {
  assert.equal(
    hostdevXml([{ segment: 0x10, bus: 0xaf, device: 0x1f, fn: 7 }]),
    '<hostdev mode="subsystem" type="pci" managed="yes">\n  <source>\n    <address domain="0x0010" bus="0xaf" slot="0x1f" function="0x7"/>\n  </source>\n</hostdev>\n',
  );
  assert.match(hostdevXml([{ segment: 0, bus: 1, device: 0, fn: 0 }], { managed: false }), /managed="no"/);
  assert.deepEqual(qemuArgs([{ segment: 0, bus: 1, device: 0, fn: 1 }]), [["-device", "vfio-pci,host=0000:01:00.1"]]);
});

test("--group takes every endpoint of the group and leaves bridges out", () => {
  const view = new RootView(INTEL);
  const gpu = resolveTargets(view, "01:00.0", true);
  assert.equal(gpu.group?.id, 12);
  assert.deepEqual(gpu.devices.map((d) => d.address), ["0000:01:00.0", "0000:01:00.1"]);
  const nvme = resolveTargets(view, "0000:02:00.0", true);
  assert.deepEqual(nvme.devices.map((d) => d.address), ["0000:02:00.0"]);
  assert.deepEqual(nvme.skipped, [{ address: "0000:00:1d.0", reason: "bridge (stays with pcieport)" }]);
});

test("CLI: XML, --qemu and --json; bad or missing devices exit 2 with one line", async () => {
  // Two devices are two documents: stdout (one file) is refused, --out-dir writes one file each.
  const xml = await cli(["libvirt-xml", "01:00.0", "--group", "--root", INTEL]);
  assert.equal(xml.code, 2);
  assert.equal(xml.stdout, "");
  assert.match(xml.stderr, /iommu: error: 2 devices: one <hostdev> document each.*\[SEVERAL_DEVICES\]/);
  assert.match(xml.stderr, /hint: .*--out-dir DIR/);
  const dir = mkdtempSync(join(tmpdir(), "iommu-hostdev-"));
  const files = await cli(["libvirt-xml", "01:00.0", "--group", "--root", INTEL, "--out-dir", dir]);
  assert.equal(files.code, 0, files.stderr);
  assert.deepEqual(files.stdout.trim().split("\n"), [join(dir, "hostdev-0000-01-00.0.xml"), join(dir, "hostdev-0000-01-00.1.xml")]);
  assert.match(readFileSync(join(dir, "hostdev-0000-01-00.1.xml"), "utf8"), /^<hostdev [^]*function="0x1"[^]*<\/hostdev>\n$/);
  const one = await cli(["libvirt-xml", "02:00.0", "--root", INTEL]);
  assert.equal(one.code, 0);
  assert.equal((one.stdout.match(/<hostdev /g) ?? []).length, 1);
  const q = await cli(["libvirt-xml", "01:00.0", "--group", "--qemu", "--root", INTEL]);
  assert.equal(q.stdout, "-device vfio-pci,host=0000:01:00.0\n-device vfio-pci,host=0000:01:00.1\n");
  const j = await cli(["libvirt-xml", "02:00.0", "--group", "--json", "--root", INTEL]);
  const parsed = JSON.parse(j.stdout) as { group: number; devices: Array<{ bus: string }>; skipped: unknown[]; qemu: string[] };
  assert.equal(parsed.group, 3);
  assert.deepEqual(parsed.devices.map((d) => d.bus), ["0x02"]);
  assert.deepEqual(parsed.qemu, ["-device", "vfio-pci,host=0000:02:00.0"]);
  const missing = await cli(["libvirt-xml", "0000:07:00.0", "--root", INTEL]);
  assert.equal(missing.code, 2);
  assert.equal(missing.stderr.split("\n")[0], `iommu: error: no PCI device 0000:07:00.0 in root ${INTEL} [DEVICE_NOT_FOUND]`);
  const bad = await cli(["libvirt-xml", "1:2:3", "--root", INTEL]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /\[BAD_BDF\]/);
  const bridge = await cli(["libvirt-xml", "00:1c.0", "--root", INTEL]);
  assert.equal(bridge.code, 2);
  assert.match(bridge.stderr, /\[DEVICE_IS_BRIDGE\]/);
  assert.doesNotMatch(missing.stderr + bad.stderr + bridge.stderr, /\n\s+at /, "no stack trace");
});

test("warnings on stderr: group partners left out, devices in use by host drivers, no IOMMU", async () => {
  const gpu = await cli(["libvirt-xml", "01:00.0", "--sim", "two-units", "--no-companions"]);
  assert.equal(gpu.code, 0, gpu.stderr);
  assert.match(gpu.stderr, /warning: group \d+ also holds 0000:01:00\.1: a group is assigned as a whole \(add --group\)/);
  assert.match(gpu.stderr, /warning: 0000:01:00\.0 is in use by the host driver nouveau/);
  const off = await cli(["libvirt-xml", "00:02.0", "--sim", "q35-noiommu"]);
  assert.equal(off.code, 0);
  assert.match(off.stderr, /warning: 0000:00:02\.0 is in no IOMMU group: the IOMMU is not active/);
  const whole = await cli(["libvirt-xml", "01:00.0", "--group", "--sim", "two-units", "--out-dir", mkdtempSync(join(tmpdir(), "iommu-hostdev-"))]);
  assert.doesNotMatch(whole.stderr, /also holds/, "nothing left out with --group");
});

test("each file --out-dir writes validates with virt-xml-validate inside a full domain", async () => {
  const tool = "/usr/bin/virt-xml-validate";
  // virt-xml-validate is a shell script around xmllint (libxml2-utils); a check that cannot run is a failure.
  const usable = existsSync(tool) && spawnSync("xmllint", ["--version"]).status === 0;
  assert.ok(usable, "virt-xml-validate and xmllint are needed: apt-get install -y libvirt-clients libxml2-utils");
  const out = mkdtempSync(join(tmpdir(), "iommu-hostdev-"));
  const w = await cli(["libvirt-xml", "01:00.0", "--group", "--root", INTEL, "--out-dir", out]);
  assert.equal(w.code, 0, w.stderr);
  for (const f of readdirSync(out)) {
    const r = spawnSync("xmllint", ["--noout", join(out, f)], { encoding: "utf8" });
    assert.equal(r.status, 0, `${f} is a well-formed document: ${r.stderr}`);
  }
  const hostdevs = readdirSync(out).map((f) => readFileSync(join(out, f), "utf8")).join("");
  const domain = `<domain type="kvm">
  <name>iommu-kit-test</name>
  <memory unit="MiB">1024</memory>
  <vcpu>2</vcpu>
  <os><type arch="x86_64" machine="q35">hvm</type></os>
  <devices>
${hostdevs}  </devices>
</domain>
`;
  const dir = mkdtempSync(join(tmpdir(), "iommu-virtxml-"));
  try {
    const good = join(dir, "domain.xml");
    writeFileSync(good, domain);
    const r = spawnSync(tool, [good, "domain"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    // the validator really checks: a bad attribute value must fail
    const broken = join(dir, "broken.xml");
    writeFileSync(broken, domain.replace('mode="subsystem"', 'mode="bogus"'));
    assert.notEqual(spawnSync(tool, [broken, "domain"], { encoding: "utf8" }).status, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a GPU comes with its slot's other functions: --qemu, --json and --out-dir take them all", async () => {
  const view = new RootView("test/fixtures/hosts/qemu-a-amd-gpu-reset");
  const t = resolveTargets(view, "00:06.0", false, { companions: true });
  assert.deepEqual(t.devices.map((d) => d.address), ["0000:00:06.0", "0000:00:06.1"]);
  assert.deepEqual(t.companions, ["0000:00:06.1"]);
  assert.deepEqual(resolveTargets(view, "00:06.0", false).companions, [], "bind and unbind act on the named function only");
  assert.deepEqual(resolveTargets(view, "00:06.1", false, { companions: true }).companions, [], "an audio function does not pull the GPU");
  const root = ["--root", "test/fixtures/hosts/qemu-a-amd-gpu-reset"];
  const q = await cli(["libvirt-xml", "00:06.0", "--qemu", ...root]);
  assert.equal(q.code, 0, q.stderr);
  assert.equal(q.stdout, "-device vfio-pci,host=0000:00:06.0\n-device vfio-pci,host=0000:00:06.1\n");
  assert.match(q.stderr, /note: 0000:00:06\.0 is a GPU: its slot's other function 0000:00:06\.1 goes to the VM with it/);
  const j = JSON.parse((await cli(["libvirt-xml", "00:06.0", "--json", ...root])).stdout) as { companions: string[]; xml: string };
  assert.deepEqual(j.companions, ["0000:00:06.1"]);
  assert.equal((j.xml.match(/<hostdev /g) ?? []).length, 2);
  const one = await cli(["libvirt-xml", "00:06.0", ...root]);
  assert.equal(one.code, 2);
  assert.match(one.stderr, /2 devices \(0000:00:06\.0 with its slot's 0000:00:06\.1\): one <hostdev> document each/);
  const only = await cli(["libvirt-xml", "00:06.0", "--no-companions", ...root]);
  assert.equal(only.code, 0);
  assert.equal((only.stdout.match(/<hostdev /g) ?? []).length, 1);
  const out = mkdtempSync(join(tmpdir(), "iommu-hostdev-"));
  const files = await cli(["libvirt-xml", "00:06.0", "--out-dir", out, ...root]);
  assert.equal(files.code, 0, files.stderr);
  assert.deepEqual(readdirSync(out).sort(), ["hostdev-0000-00-06.0.xml", "hostdev-0000-00-06.1.xml"]);
  // The companion's own group need not be the GPU's: the simulated two-units machine has both in one group.
  const sim = await cli(["libvirt-xml", "01:00.0", "--sim", "two-units", "--qemu"]);
  assert.equal(sim.stdout, "-device vfio-pci,host=0000:01:00.0\n-device vfio-pci,host=0000:01:00.1\n");
  assert.doesNotMatch(sim.stderr, /also holds/);
});
