/**
 * The browser view of `iommu ui`: reads the JSON embedded in the page (<script id="iommu-data">) and renders
 * the machine, a device's address space, page walks and the tour's stories with plain DOM calls. No framework,
 * no network access: the page works from file://.
 */

interface Device { bdf: string; name: string; type: string; parent: string | null; acs: boolean; multifunction: boolean; aliases: number[]; group: number | null; unit: string | null }
interface Group { id: number; type: string | null; domainIds: number[]; devices: string[]; why: string[] }
interface Unit { name: string; base: string; translation: boolean; irqRemapping: boolean; scope: string[] }
interface Level { table: string; level?: number; index: number; address: string; value: string; valueHi?: string; present: boolean; read?: boolean; write?: boolean; pageSize?: number; next?: string; fpd?: boolean; translationType?: string; addressWidth?: number; domainId?: number }
interface Walk { result: "ok" | "fault"; bdf: string; iova: string; hpa?: string; reason?: number; reasonName?: string; description?: string; levels: Level[] }
interface Range { iova: string; hpa: string; size: string; pages: number; read: boolean; write: boolean }
interface Msi { result: "ok" | "fault"; bdf: string; vector?: number; destination?: number; index?: number; reason?: number; reasonName?: string; description?: string; detail?: string; msi?: { address: string; data: string } }
interface Space { bdf: string; domainType: string | null; bufferPages: string[]; mappings: { result: string; domainId?: number; ranges?: Range[]; reasonName?: string }; reserved: { start: string; end: string; type: string }[]; walks: Walk[]; msi: Msi[] }
interface Story { id: string; title: string; runs: { label: string; cmdline: string; numbers: Record<string, unknown>; summary: string }[] }
interface Data { machine: string; cmdline: string; devices: Device[]; units: Unit[]; groups: Group[]; spaces: Space[]; stories: Story[] }

type Child = Node | string;

function h(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function groupColour(id: number | null): string {
  return id === null ? "#ddd" : `hsl(${(id * 67) % 360} 70% 85%)`;
}

function byId(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`page element #${id} missing`);
  return e;
}

function machineTree(data: Data, select: (bdf: string) => void): HTMLElement {
  const kids = (parent: string | null): Device[] => data.devices.filter((d) => d.parent === parent);
  const item = (d: Device): HTMLElement => {
    const below = kids(d.bdf);
    const btn = h("button", { type: "button", class: "dev", "data-bdf": d.bdf, style: `background:${groupColour(d.group)}` },
      `${d.bdf} ${d.name} `, h("small", {}, `${d.type}${d.group === null ? "" : ` · group ${d.group}`}${d.multifunction ? " · multifunction" : ""}${d.acs ? " · ACS" : ""}`));
    btn.addEventListener("click", () => select(d.bdf));
    const li = h("li", { role: "treeitem", "aria-label": `${d.bdf} ${d.name}, ${d.type}${d.group === null ? "" : `, IOMMU group ${d.group}`}` }, btn);
    if (below.length > 0) {
      li.setAttribute("aria-expanded", "true");
      li.append(h("ul", { role: "group" }, ...below.map(item)));
    }
    return li;
  };
  return h("ul", { role: "tree", "aria-label": `PCI topology of ${data.machine}` }, ...kids(null).map(item));
}

function unitsAndGroups(data: Data): HTMLElement {
  const units = h("ul", { "aria-label": "IOMMU units" }, ...data.units.map((u) =>
    h("li", {}, `${u.name} at ${u.base}: translation ${u.translation ? "on" : "off"}, interrupt remapping ${u.irqRemapping ? "on" : "off"}; scope ${u.scope.length} functions`)));
  const groups = h("ul", { "aria-label": "IOMMU groups", class: "groups" }, ...data.groups.map((g) =>
    h("li", { style: `background:${groupColour(g.id)}`, "data-group": String(g.id) },
      h("strong", {}, `Group ${g.id}`), ` [${g.type ?? "no domain"}] domain ${g.domainIds.join(",") || "-"}: ${g.devices.join(", ")}`,
      g.why.length > 0 ? h("div", { class: "why" }, "Why together: " + g.why.join("; ")) : h("div", { class: "why" }, "Alone: isolated"))));
  return h("div", {}, h("h3", {}, "IOMMU units"), units, h("h3", {}, "Groups"), groups);
}

function levelRow(l: Level): HTMLElement {
  const bits: string[] = [`present=${l.present ? 1 : 0}`];
  if (l.read !== undefined) bits.push(`R=${l.read ? 1 : 0}`, `W=${l.write ? 1 : 0}`);
  if (l.translationType !== undefined) bits.push(`TT=${l.translationType}`);
  if (l.addressWidth !== undefined) bits.push(`AW=${l.addressWidth}`);
  if (l.domainId !== undefined) bits.push(`DID=${l.domainId}`);
  if (l.fpd !== undefined) bits.push(`FPD=${l.fpd ? 1 : 0}`);
  if (l.pageSize !== undefined) bits.push(`page ${l.pageSize} bytes`);
  if (l.next !== undefined) bits.push(`→ ${l.next}`);
  return h("li", { class: l.present ? "step" : "step absent" },
    h("strong", {}, l.table), ` [${l.index}] at ${l.address} = ${l.value}${l.valueHi === undefined ? "" : ` hi ${l.valueHi}`}`, h("div", { class: "bits" }, bits.join("  ")));
}

function showWalk(w: Walk): void {
  const out = byId("walk");
  const end = w.result === "ok"
    ? h("p", { class: "ok", role: "status" }, `Translated: IOVA ${w.iova} → host ${w.hpa ?? "?"}`)
    : h("p", { class: "fault", role: "alert" }, `Fault ${w.reasonName ?? ""} (reason 0x${(w.reason ?? 0).toString(16)}): ${w.description ?? ""}`);
  out.replaceChildren(h("h3", {}, `Walk of ${w.iova} for ${w.bdf}`), h("ol", { "aria-label": "walk steps" }, ...w.levels.map(levelRow)), end);
}

function showMsi(m: Msi): void {
  const out = byId("walk");
  const body = m.result === "ok"
    ? h("p", { class: "ok", role: "status" }, `IRTE ${m.index ?? "-"}: vector ${m.vector ?? "?"} to APIC ${m.destination ?? "?"} (the device wrote ${m.msi?.address ?? ""} / ${m.msi?.data ?? ""})`)
    : h("p", { class: "fault", role: "alert" }, `Interrupt blocked at IRTE ${m.index ?? "-"}: ${m.reasonName ?? ""} (reason 0x${(m.reason ?? 0).toString(16)}): ${m.description ?? ""}; ${m.detail ?? ""}`);
  out.replaceChildren(h("h3", {}, `MSI from ${m.bdf} through the interrupt remapping table`), body);
}

function note(text: string): void {
  byId("walk").replaceChildren(h("p", { role: "status", class: "note" }, text));
}

async function walkTyped(s: Space, text: string): Promise<void> {
  let iova: bigint;
  try {
    iova = BigInt(/^0x/i.test(text.trim()) ? text.trim() : "0x" + text.trim());
  } catch {
    note(`'${text}' is not a hexadecimal address`);
    return;
  }
  const known = s.walks.find((w) => BigInt(w.iova) === iova);
  if (known !== undefined) return showWalk(known);
  if (!location.protocol.startsWith("http")) {
    note("Walking a typed address needs the served page ('iommu ui'); this exported page holds the walks listed above.");
    return;
  }
  const r = await fetch(`api/walk?bdf=${encodeURIComponent(s.bdf)}&iova=0x${iova.toString(16)}`);
  const body = (await r.json()) as Walk | { error: string };
  if ("error" in body) note(body.error);
  else showWalk(body);
}

function walkForm(s: Space): HTMLElement {
  const input = h("input", { id: "iova-input", name: "iova", placeholder: "0xffffc000", size: "20" }) as HTMLInputElement;
  const form = h("form", { "aria-label": `walk an IOVA of ${s.bdf}` }, h("label", { for: "iova-input" }, "IOVA to walk: "), input, h("button", { type: "submit" }, "Walk"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void walkTyped(s, input.value);
  });
  return form;
}

function walkButton(label: string, onClick: () => void): HTMLElement {
  const b = h("button", { type: "button", class: "walk" }, label);
  b.addEventListener("click", onClick);
  return b;
}

function showSpace(data: Data, bdf: string): void {
  const out = byId("space");
  const d = data.devices.find((x) => x.bdf === bdf);
  const s = data.spaces.find((x) => x.bdf === bdf);
  for (const b of document.querySelectorAll<HTMLElement>("button.dev")) b.setAttribute("aria-pressed", String(b.dataset["bdf"] === bdf));
  if (s === undefined) {
    out.replaceChildren(h("h3", {}, `${bdf} ${d?.name ?? ""}`), h("p", {}, `${d?.type ?? "this function"} issues no DMA of its own: no address space to show.`));
    return;
  }
  const ranges = s.mappings.ranges ?? [];
  const rows = ranges.map((r) => {
    const w = s.walks.find((x) => BigInt(x.iova) >= BigInt(r.iova) && BigInt(x.iova) < BigInt(r.iova) + BigInt(r.size));
    return h("tr", {}, h("td", {}, r.iova), h("td", {}, r.hpa), h("td", {}, r.size), h("td", {}, `${r.read ? "R" : "-"}${r.write ? "W" : "-"}`),
      h("td", {}, w === undefined ? "" : walkButton(`walk ${w.iova}`, () => showWalk(w))));
  });
  const table = h("table", { "aria-label": `IOVA mappings of ${bdf}` },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "IOVA"), h("th", { scope: "col" }, "host page"), h("th", { scope: "col" }, "bytes"), h("th", { scope: "col" }, "access"), h("th", { scope: "col" }, "walk"))),
    h("tbody", {}, ...rows));
  const faults = s.walks.filter((w) => w.result === "fault").map((w) => walkButton(`walk ${w.iova} (unmapped)`, () => showWalk(w)));
  const msis = s.msi.map((m, i) => walkButton(i === 0 ? "MSI through IRTE 0" : `MSI through IRTE ${m.index ?? "?"}`, () => showMsi(m)));
  out.replaceChildren(
    h("h3", {}, `${bdf} ${d?.name ?? ""}: ${s.domainType === "identity" ? "identity domain (IOVA = host address)" : `translated domain ${s.domainType ?? ""} id ${s.mappings.domainId ?? "-"}`}`),
    h("p", {}, s.bufferPages.length > 0 ? `A buffer of ${s.bufferPages.length} scattered host pages (${s.bufferPages.join(", ")}) mapped through the DMA API reaches the device as ${ranges.length > 0 ? `IOVAs ${ranges[0]?.iova ?? ""}…` : "no IOVA"}:` : "No buffer mapped."),
    table,
    h("p", {}, "Reserved regions: " + (s.reserved.map((r) => `${r.start}–${r.end} ${r.type}`).join(", ") || "none")),
    h("div", { class: "actions" }, ...faults, ...msis),
    walkForm(s),
  );
}

function storyView(st: Story): HTMLElement {
  const col = (r: Story["runs"][number]): HTMLElement => h("div", { class: "run", role: "group", "aria-label": r.label },
    h("h4", {}, r.label), h("p", {}, h("code", {}, r.cmdline || "(default)")), h("p", { class: "summary" }, r.summary),
    h("dl", {}, ...Object.entries(r.numbers).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))])));
  return h("div", { class: "timeline" }, ...st.runs.map(col));
}

function stories(data: Data): HTMLElement {
  const out = h("div", { id: "story" });
  const list = h("div", { role: "tablist", "aria-label": "stories" }, ...data.stories.map((st) => {
    const b = h("button", { type: "button", role: "tab", "aria-selected": "false", "data-story": st.id }, `(${st.id}) ${st.title}`);
    b.addEventListener("click", () => {
      for (const x of list.querySelectorAll("[role=tab]")) x.setAttribute("aria-selected", String(x === b));
      out.replaceChildren(h("h3", {}, st.title), storyView(st));
    });
    return b;
  }));
  return h("div", {}, list, out);
}

function main(): void {
  const text = byId("iommu-data").textContent ?? "{}";
  const data = JSON.parse(text) as Data;
  const select = (bdf: string): void => showSpace(data, bdf);
  document.title = `iommu ui — ${data.machine}`;
  byId("app").replaceChildren(
    h("header", {}, h("h1", {}, `IOMMU view of ${data.machine}`), h("p", {}, `Simulated machine booted with "${data.cmdline}". Click a device, then a walk.`)),
    h("main", {},
      h("section", { "aria-labelledby": "h-machine" }, h("h2", { id: "h-machine" }, "1. Machine"), h("div", { class: "cols" }, machineTree(data, select), unitsAndGroups(data))),
      h("section", { "aria-labelledby": "h-space" }, h("h2", { id: "h-space" }, "2. Address space"), h("div", { id: "space", "aria-live": "polite" }, "Choose a device in the tree.")),
      h("section", { "aria-labelledby": "h-walk" }, h("h2", { id: "h-walk" }, "3. Page walk"), h("div", { id: "walk", "aria-live": "polite" }, "Choose a walk in the address space.")),
      h("section", { "aria-labelledby": "h-stories" }, h("h2", { id: "h-stories" }, "4. Stories: without and with the IOMMU"), stories(data)),
    ),
  );
}

main();
