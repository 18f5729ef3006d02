/**
 * The browser view in a real browser: Debian's chromium driven by playwright-core. Loads the page exported by
 * `iommu ui --export DIR -m q35` from file:// and the page served by `iommu ui`, clicks a device, a walk that
 * faults, an MSI and a story, and checks what a screen reader reads. Screenshots go to test-artifacts/ui/;
 * with IOMMU_KIT_UPDATE_DOCS=1 the README's docs/ui.png is rewritten too.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";

const CHROMIUM = process.env["CHROMIUM"] ?? "/usr/bin/chromium";
const ARTIFACTS = "test-artifacts/ui";
const CLI = "bin/iommu.js";

let browser: Browser;
let site: string;
let served: { url: string; kill: () => void };
let data: { devices: { bdf: string }[]; groups: { id: number; devices: string[] }[]; stories: { id: string }[] };

function serve(): Promise<{ url: string; kill: () => void }> {
  const child = spawn(process.execPath, [CLI, "ui", "-m", "q35", "--no-stories", "--for", "120", "--json"], { stdio: ["ignore", "pipe", "inherit"] });
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
  assert.ok(existsSync(CLI) && existsSync("dist/web/app.js"), "the project is not built: run 'npm run build'");
  mkdirSync(ARTIFACTS, { recursive: true });
  site = mkdtempSync(join(tmpdir(), "iommu-ui-"));
  const servedP = serve();
  const r = spawnSync(process.execPath, [CLI, "ui", "--export", site, "-m", "q35", "--json"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  served = await servedP;
  const html = readFileSync(join(site, "index.html"), "utf8");
  const m = /<script type="application\/json" id="iommu-data">(.*?)<\/script>/s.exec(html);
  assert.ok(m?.[1] !== undefined, "the exported page embeds its data");
  data = JSON.parse(m[1]) as typeof data;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
});

after(async () => {
  await browser?.close();
  served?.kill();
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
  assert.ok(data.devices.length > 5 && data.groups.length > 3);
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

test("served page (127.0.0.1): the tree, a device and a faulting walk", async () => {
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
  await page.screenshot({ path: join(ARTIFACTS, "served.png") });
  assert.deepEqual(errors, []);
  await page.close();
});
