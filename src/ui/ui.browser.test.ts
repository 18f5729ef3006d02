/**
 * The browser view in a real browser: Debian's chromium driven by playwright-core. Loads the page exported by
 * `iommu ui --export DIR -m q35` from file:// and the page served by `iommu ui`, clicks a device, a walk that
 * faults, an MSI, a story and a scenario's timeline; then the page of a host recorded with `iommu snapshot`
 * (exported and served), a device with the doctor's findings on it. Checks what a screen reader reads (roles
 * and labels) and that the console stays free of errors. An AMD-Vi machine's page (served): its unit, walks from
 * the device table, an aliased device, MSIs. Screenshots go to test-artifacts/ui/; with
 * IOMMU_KIT_UPDATE_DOCS=1 the README's docs/ui.png is rewritten too.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { Machine } from "../hw/machine.js";
import { Kernel } from "../os/kernel.js";

const CHROMIUM = process.env["CHROMIUM"] ?? "/usr/bin/chromium";
const ARTIFACTS = "test-artifacts/ui";
/** The CLI from source (a stale dist/ would test old code); the view script is built in `before`. */
const CLI = ["--import", "tsx", "test/support/iommu-child.ts"];

let browser: Browser;
let site: string;
let hostSite: string;
let served: { url: string; kill: () => void };
let servedHost: { url: string; kill: () => void };
interface Run { label: string; steps: unknown[]; requests: unknown[]; interrupts: unknown[]; faults: unknown[]; verdict: { protected: boolean } }
let data: { devices: { bdf: string }[]; groups: { id: number; devices: string[] }[]; stories: { id: string }[]; scenarios: { name: string; title: string; runs: Run[] }[] };
let hostData: { devices: { bdf: string; check: { findings: { code: string; ok: boolean }[] } | null }[]; groups: { id: number; devices: string[] }[]; host: { problems: { code: string }[] } };

function embedded<T>(dir: string): T {
  const html = readFileSync(join(dir, "index.html"), "utf8");
  const m = /<script type="application\/json" id="iommu-data">(.*?)<\/script>/s.exec(html);
  assert.ok(m?.[1] !== undefined, "the exported page embeds its data");
  return JSON.parse(m[1]) as T;
}

function serve(args: string[]): Promise<{ url: string; kill: () => void }> {
  const child = spawn(process.execPath, [...CLI, "ui", ...args, "--for", "120", "--json"], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
      const m = /"url": "([^"]+)"/.exec(out);
      if (m?.[1] !== undefined) resolve({ url: m[1], kill: () => child.kill("SIGTERM") });
    });
    child.on("exit", (code) => reject(new Error(`iommu ui exited ${code ?? "?"} before printing its URL: ${out}`)));
  });
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install it with 'apt-get install -y chromium' (or set CHROMIUM=path)`);
  const web = spawnSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "web/tsconfig.json"], { encoding: "utf8" });
  assert.equal(web.status, 0, `building the view script (web/app.ts): ${web.stdout}${web.stderr}`);
  mkdirSync(ARTIFACTS, { recursive: true });
  site = mkdtempSync(join(tmpdir(), "iommu-ui-"));
  hostSite = join(site, "host");
  const snapshot = join(site, "noir.json");
  const rec = spawnSync(process.execPath, [...CLI, "snapshot", "--root", "test/fixtures/hosts/qemu-b-intel-noir", "--no-dmesg", "-o", snapshot], { encoding: "utf8" });
  assert.equal(rec.status, 0, rec.stderr);
  const servedP = serve(["-m", "q35"]);
  const servedHostP = serve(["--snapshot", snapshot]);
  const r = spawnSync(process.execPath, [...CLI, "ui", "--export", site, "-m", "q35", "--json"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const rh = spawnSync(process.execPath, [...CLI, "ui", "--export", hostSite, "--snapshot", snapshot, "--json"], { encoding: "utf8" });
  assert.equal(rh.status, 0, rh.stderr);
  served = await servedP;
  servedHost = await servedHostP;
  data = embedded<typeof data>(site);
  hostData = embedded<typeof hostData>(hostSite);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
});

after(async () => {
  await browser?.close();
  served?.kill();
  servedHost?.kill();
});

async function open(url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(msg.text());
  });
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url);
  await page.getByRole("tree").waitFor();
  return { page, errors };
}

test("exported page (file://): every device and group, a device, a faulting walk, an MSI, a story", async () => {
  const { page, errors } = await open("file://" + join(site, "index.html"));
  const q35 = Machine.load("q35");
  assert.deepEqual(data.devices.map((d) => d.bdf), q35.topology.functions.map((f) => f.bdf), "every PCI function of q35");
  assert.equal(data.groups.length, Kernel.boot(q35, { cmdline: "intel_iommu=on" }).groups.length, "every group the kernel made");
  const text = await page.locator("#app").innerText();
  for (const d of data.devices) assert.equal(await page.locator(`button.dev[data-bdf="${d.bdf}"]`).count(), 1, `device ${d.bdf} in the tree`);
  for (const g of data.groups) {
    assert.equal(await page.locator(`[data-group="${g.id}"]`).count(), 1, `group ${g.id} listed`);
    for (const bdf of g.devices) assert.ok(text.includes(bdf), `group member ${bdf} shown`);
  }
  // What a screen reader reads: landmarks, the tree and its items, labelled tables and live regions.
  assert.equal(await page.getByRole("heading", { level: 1 }).count(), 1);
  assert.ok((await page.getByRole("treeitem").count()) === data.devices.length);
  assert.equal(await page.getByRole("region", { name: "1. Machine" }).count(), 1);
  assert.equal(await page.getByRole("list", { name: "IOMMU groups" }).count(), 1);
  // A device behind the PCIe-to-PCI bridge: its group says why.
  assert.match(text, /PCIe-to-PCI bridge/);
  await page.locator('button.dev[data-bdf="00:02.0"]').click();
  await page.getByRole("table", { name: "IOVA mappings of 00:02.0" }).waitFor();
  assert.equal(await page.locator('button.dev[data-bdf="00:02.0"]').getAttribute("aria-pressed"), "true");
  await page.getByRole("button", { name: /unmapped/ }).click();
  const alert = page.getByRole("alert");
  await alert.waitFor();
  assert.match(await alert.innerText(), /Fault .*reason 0x/);
  assert.ok((await page.getByRole("list", { name: "walk steps" }).getByRole("listitem").count()) >= 3, "root, context and at least one level");
  await page.screenshot({ path: join(ARTIFACTS, "walk-fault.png"), fullPage: true });
  await page.getByRole("button", { name: /MSI through IRTE 0/ }).click();
  assert.match(await page.getByRole("status").innerText(), /vector \d+/);
  const story = data.stories[0];
  assert.ok(story !== undefined, "the tour's stories are embedded");
  await page.getByRole("tab", { name: new RegExp(`^\\(${story.id}\\)`) }).click();
  assert.equal(await page.locator(".timeline .run").count(), 2, "without and with, side by side");
  assert.equal(await page.getByRole("group", { name: "with IOMMU" }).count(), 1);
  await page.locator('button.dev[data-bdf="00:02.0"]').click();
  await page.getByRole("button", { name: /^walk 0x/ }).first().click();
  await page.evaluate("window.scrollTo(0, 0)");
  await page.screenshot({ path: join(ARTIFACTS, "exported.png"), fullPage: false });
  if (process.env["IOMMU_KIT_UPDATE_DOCS"] === "1") copyFileSync(join(ARTIFACTS, "exported.png"), "docs/ui.png");
  assert.deepEqual(errors, []);
  await page.close();
});

test("served page (127.0.0.1): the tree, a device, a faulting walk, a typed walk, a story and a scenario", async () => {
  assert.match(served.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const { page, errors } = await open(served.url);
  await page.locator('button.dev[data-bdf="00:04.0"]').click();
  await page.getByRole("button", { name: /unmapped/ }).click();
  assert.match(await page.getByRole("alert").innerText(), /Fault/);
  // A typed address, walked by the server on the live machine: the first page of the range translates.
  await page.getByLabel("IOVA to walk").fill("0xfffff008");
  await page.getByRole("button", { name: "Walk", exact: true }).click();
  await page.getByText("Walk of 0xfffff008").waitFor();
  assert.match(await page.locator("#walk").innerText(), /Translated: IOVA 0xfffff008 → host 0x[0-9a-f]+008/);
  await page.getByLabel("IOVA to walk").fill("zz");
  await page.getByRole("button", { name: "Walk", exact: true }).click();
  assert.match(await page.getByRole("status").innerText(), /not a hexadecimal address/);
  // A story and a scenario, as on the exported page.
  await page.getByRole("tab", { name: /^\(c\) / }).click();
  assert.equal(await page.getByRole("tabpanel", { name: "stories" }).locator(".timeline .run").count(), 2);
  await page.getByRole("tab", { name: /^deferred-dma: / }).click();
  assert.match(await page.getByRole("tabpanel", { name: "scenarios" }).innerText(), /NOT PROTECTED: the delayed write used vm1's stale translation/);
  await page.screenshot({ path: join(ARTIFACTS, "served.png") });
  assert.deepEqual(errors, []);
  await page.close();
});

test("exported page: each scenario's runs as timelines on one simulated-time axis, side by side", async () => {
  const { page, errors } = await open("file://" + join(site, "index.html"));
  const tabs = await page.getByRole("tablist", { name: "scenarios" }).getByRole("tab").allInnerTexts();
  assert.deepEqual(tabs, data.scenarios.map((s) => `${s.name}: ${s.title}`), "one tab per scenario, as 'iommu scenario --list' names them");
  for (const sc of data.scenarios) {
    await page.getByRole("tab", { name: new RegExp(`^${sc.name}: `) }).click();
    assert.equal(await page.getByRole("tab", { name: new RegExp(`^${sc.name}: `) }).getAttribute("aria-selected"), "true");
    const panel = page.getByRole("tabpanel", { name: "scenarios" });
    assert.equal(await panel.locator(".timeline .run").count(), sc.runs.length, `${sc.name}: the runs side by side`);
    for (const run of sc.runs) {
      const col = panel.getByRole("group", { name: run.label, exact: true });
      const events = col.getByRole("list", { name: `timeline of ${run.label}` }).getByRole("listitem");
      assert.equal(await events.count(), run.steps.length + run.requests.length + run.interrupts.length, `${sc.name} / ${run.label}: every step, request and interrupt`);
      assert.match(await col.innerText(), run.verdict.protected ? /^PROTECTED: /m : /^NOT PROTECTED: /m);
      assert.equal(await col.getByRole("list", { name: `fault records of ${run.label}` }).getByRole("listitem").count(), run.faults.length);
    }
  }
  await page.getByRole("tab", { name: /^isolation: / }).click();
  const panel = page.getByRole("tabpanel", { name: "scenarios" });
  const unprotected = panel.getByRole("group", { name: /no IOMMU/ });
  assert.match(await unprotected.getByRole("list", { name: /^memory written in / }).innerText(), /vm2 GPA 0x1800000/, "vm2's page written without the IOMMU");
  assert.match(await panel.getByRole("group", { name: "IOMMU on" }).getByRole("list", { name: /^fault records of / }).innerText(), /reason 0x05 WRITE/);
  await page.locator("#h-scenarios").evaluate((e) => e.scrollIntoView());
  await page.screenshot({ path: join(ARTIFACTS, "scenario.png") });
  assert.deepEqual(errors, []);
  await page.close();
});

async function checkHostPage(url: string, shot: string): Promise<void> {
  const { page, errors } = await open(url);
  const text = await page.locator("#app").innerText();
  assert.equal(await page.getByRole("treeitem").count(), hostData.devices.length);
  for (const d of hostData.devices) assert.equal(await page.locator(`button.dev[data-bdf="${d.bdf}"]`).count(), 1, `device ${d.bdf} in the tree`);
  for (const g of hostData.groups) assert.equal(await page.locator(`[data-group="${g.id}"]`).count(), 1, `group ${g.id} listed`);
  assert.match(text, /multifunction device 0000:00:06 without ACS/);
  assert.match(text, /PCIe-to-PCI bridge 0000:01:00\.0/);
  // The recording has no IOMMU tables: one line says why the machine's panels are absent.
  assert.match(await page.getByRole("note").innerText(), /not the IOMMU's tables in memory/);
  assert.equal(await page.getByRole("region", { name: "2. Address space" }).count(), 0);
  const problems = page.getByRole("list", { name: "the doctor's problems" }).getByRole("listitem");
  assert.equal(await problems.count(), hostData.host.problems.length);
  assert.match(await problems.first().innerText(), /INTERRUPT_REMAPPING_DISABLED/);
  // A device and its check: the group member that must leave its host driver too.
  const nic = page.locator('button.dev[data-bdf="0000:00:06.0"]');
  assert.match(await nic.innerText(), /to do/);
  await nic.click();
  const check = page.getByRole("list", { name: "check of 0000:00:06.0" });
  await check.waitFor();
  const findings = hostData.devices.find((d) => d.bdf === "0000:00:06.0")?.check?.findings ?? [];
  assert.equal(await check.getByRole("listitem").count(), findings.length);
  assert.match(await check.locator('[data-code="GROUP_VIABLE"]').innerText(), /\[todo\] group 5 also holds 0000:00:06\.1/);
  assert.match(await page.getByRole("alert").innerText(), /Not ready for pass-through: 1 blocking finding/);
  assert.match(await check.locator('[data-code="INTERRUPT_REMAPPING"]').innerText(), /\[FAIL\] interrupt remapping is off/);
  await page.locator('button.dev[data-bdf="0000:01:00.0"]').click();
  assert.match(await page.locator("#device").innerText(), /0000:01:00\.0 is a bridge \(1b36:000e \[0604\] PCI bridge\): bridges stay with the host/);
  await page.locator('button.dev[data-bdf="0000:00:06.0"]').click();
  await page.screenshot({ path: join(ARTIFACTS, shot), fullPage: true });
  assert.deepEqual(errors, []);
  await page.close();
}

test("a recorded host, exported (file://): its devices and groups, the doctor's problems, a device's check", async () => {
  await checkHostPage("file://" + join(hostSite, "index.html"), "snapshot-exported.png");
});

test("a recorded host, served (127.0.0.1): the same page", async () => {
  assert.match(servedHost.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  await checkHostPage(servedHost.url, "snapshot-served.png");
});

test("an AMD-Vi machine, served: its unit's PCI function and EFR, walks from the device table, events, an aliased device, MSIs", async () => {
  const amd = await serve(["-m", "q35-amd", "--no-stories"]);
  try {
    const { page, errors } = await open(amd.url);
    const amdData = JSON.parse((await page.locator("#iommu-data").textContent()) ?? "{}") as { spaces: { bdf: string; walks: { iova: string; hpa?: string }[] }[] };
    assert.match(await page.locator("header").innerText(), /no IOMMU option on its command line/);
    assert.match(await page.getByRole("list", { name: "IOMMU units" }).innerText(), /^ivhd0 at 0xfed80000: translation on, interrupt remapping on; .*AMD-Vi, PCI function 00:01\.0, EFR 0x[0-9a-f]+ \(.*GASup/);
    // Behind the PCIe-to-PCI bridge: the unit sees the bridge's alias DeviceID.
    await page.locator('button.dev[data-bdf="02:01.0"]').click();
    await page.getByRole("button", { name: /unmapped/ }).click();
    assert.match(await page.getByRole("alert").innerText(), /^Fault IO_PAGE_FAULT \(event 0x2\): /);
    assert.match(await page.locator("#walk h3").innerText(), /for 02:01\.0 \(its requests carry DeviceID 02:00\.0\)/);
    assert.match(await page.getByRole("list", { name: "walk steps" }).getByRole("listitem").first().innerText(), /^device table entry \[512\]/);
    await page.locator('button.dev[data-bdf="00:02.0"]').click();
    await page.getByRole("button", { name: "MSI through IRTE 0" }).click();
    assert.match(await page.getByRole("status").innerText(), /^IRTE 0: vector \d+/);
    await page.getByRole("button", { name: "MSI through IRTE 256" }).click();
    assert.match(await page.getByRole("alert").innerText(), /^Interrupt blocked at IRTE 256: IO_PAGE_FAULT \(event 0x2\)/);
    // A typed address, walked by the server through the device table: where the page's own walk of it lands.
    const first = amdData.spaces.find((s) => s.bdf === "00:02.0")?.walks[0];
    assert.ok(first?.hpa !== undefined);
    const typed = BigInt(first.iova) + 8n;
    await page.getByLabel("IOVA to walk").fill("0x" + typed.toString(16));
    await page.getByRole("button", { name: "Walk", exact: true }).click();
    await page.getByText(`Walk of 0x${typed.toString(16)}`).waitFor();
    assert.match(await page.locator("#walk").innerText(), new RegExp(`Translated: IOVA 0x${typed.toString(16)} → host 0x${(BigInt(first.hpa) + 8n).toString(16)}`));
    await page.screenshot({ path: join(ARTIFACTS, "amd-served.png"), fullPage: true });
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    amd.kill();
  }
});
