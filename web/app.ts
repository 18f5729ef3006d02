/**
 * The browser view of `iommu ui`: reads the JSON embedded in the page (<script id="iommu-data">) and renders,
 * with plain DOM calls, either a simulated machine (its PCI tree and groups, a device's address space, page
 * walks, the tour's stories and the scenarios as timelines) or a host recorded in a snapshot (its PCI tree and
 * groups, the doctor's problems, each device's check). No framework, no network access: the page works from
 * file://. The shapes below are those of src/ui/types.ts.
 */

interface Finding { code: string; ok: boolean; severity: "error" | "warning" | "info"; message: string; hint: string; scope: "host" | "device" }
interface Device {
  bdf: string; name: string; type: string; parent: string | null; acs: boolean | null; multifunction: boolean; aliases: number[]; group: number | null; unit: string | null;
  driver: string | null; ids: string | null; check: { ready: boolean; findings: Finding[]; nextSteps: string[] } | null;
}
interface Region { start: string; end: string; type: string }
interface Group { id: number; type: string | null; domainIds: number[] | null; devices: string[]; why: string[]; reserved: Region[] }
interface AmdVi { bdf: string; efr: string; features: string[]; hostLevels: number }
interface Unit { name: string; base: string; translation: boolean | null; irqRemapping: boolean | null; scope: string[]; amdVi?: AmdVi }
interface Level { table: string; level?: number; index: number; address: string; value: string; valueHi?: string; present: boolean; read?: boolean; write?: boolean; pageSize?: number; next?: string; fpd?: boolean; translationType?: string; addressWidth?: number; domainId?: number }
interface Walk { result: "ok" | "fault"; bdf: string; iova: string; hpa?: string; reason?: number; reasonName?: string; description?: string; levels: Level[] }
interface Range { iova: string; hpa: string; size: string; pages: number; read: boolean; write: boolean }
interface Msi { result: "ok" | "fault"; bdf: string; remapped?: boolean; vector?: number; destination?: number; index?: number; reason?: number; reasonName?: string; description?: string; detail?: string; msi?: { address: string; data: string } }
interface Space { bdf: string; domainType: string | null; bufferPages: string[]; mappings: { result: string; domainId?: number; ranges?: Range[]; reasonName?: string }; reserved: { start: string; end: string; type: string }[]; walks: Walk[]; msi: Msi[] }
interface Story { id: string; title: string; runs: { label: string; cmdline: string; numbers: Record<string, unknown>; summary: string }[]; skipped?: string }
interface Request {
  seq: number; ns: number; device: string; op: "read" | "write" | "msi"; addr: string; length: number; data?: string; purpose: string; outcome: "ok" | "blocked" | "unsupported";
  translations: { iova: string; hpa: string; length: number; landed: string }[]; fault?: { reason: string; name: string; recorded: boolean }; interrupt?: { deliveredTo: string[] };
}
interface ScenarioRun {
  label: string; settings: Record<string, string | boolean>; steps: { ns: number; text: string }[]; requests: Request[];
  faults: { unit: string; source: string; type: string; addr: string; reason: string; name: string; text: string }[];
  faultRecording: { recorded: number; overflowed: number; collapsed: number };
  interrupts: { ns: number; source: string; remapped: boolean; posted: boolean; vector: string; cpu: number; to: string }[];
  numbers: Record<string, unknown>; verdict: { protected: boolean; summary: string };
}
interface Scenario { name: string; title: string; runs: ScenarioRun[] }
interface Host {
  source: string; hostname: string | null; kernel: string | null; recordedAt: string | null; recordedBy: string | null; ready: boolean; iommuActive: boolean;
  interruptRemapping: string; dmaPolicy: string | null; problems: { code: string; severity: string; message: string; hint: string }[];
}
interface Data {
  source: "machine" | "snapshot"; machine: string; cmdline: string; devices: Device[]; units: Unit[]; groups: Group[]; spaces: Space[]; stories: Story[];
  scenarios: Scenario[]; scenariosSkipped: string | null; host: Host | null; absent: string | null;
}

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

/** What the check of a device found about the device itself (not the host): what blocks it, what is left to do. */
function ownFindings(d: Device): { blocking: Finding[]; todo: Finding[] } {
  const own = (d.check?.findings ?? []).filter((f) => f.scope === "device" && !f.ok);
  return { blocking: own.filter((f) => f.severity === "error"), todo: own.filter((f) => f.severity !== "error") };
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;

/** " · 1 blocking · 2 to do" for the tree. */
function findingsTag(d: Device): string {
  const { blocking, todo } = ownFindings(d);
  return `${blocking.length > 0 ? ` · ${blocking.length} blocking` : ""}${todo.length > 0 ? ` · ${todo.length} to do` : ""}`;
}

function acsText(acs: boolean | null): string {
  return acs === null ? " · ACS unknown" : acs ? " · ACS" : "";
}

function machineTree(data: Data, select: (bdf: string) => void): HTMLElement {
  const kids = (parent: string | null): Device[] => data.devices.filter((d) => d.parent === parent || (parent === null && d.parent !== null && !data.devices.some((p) => p.bdf === d.parent)));
  const item = (d: Device): HTMLElement => {
    const below = kids(d.bdf);
    const problems = findingsTag(d);
    const cls = ownFindings(d).blocking.length > 0 ? "dev blocked" : problems !== "" ? "dev todo" : "dev";
    const btn = h("button", { type: "button", class: cls, "data-bdf": d.bdf, style: `background:${groupColour(d.group)}` },
      `${d.bdf} ${d.name} `, h("small", {}, `${d.type}${d.group === null ? " · no group" : ` · group ${d.group}`}${d.multifunction ? " · multifunction" : ""}${acsText(d.acs)}${problems}`));
    btn.addEventListener("click", () => select(d.bdf));
    const li = h("li", { role: "treeitem", "aria-label": `${d.bdf} ${d.name}, ${d.type}${d.group === null ? ", in no IOMMU group" : `, IOMMU group ${d.group}`}${problems.replace(/ · /g, ", ")}` }, btn);
    if (below.length > 0) {
      li.setAttribute("aria-expanded", "true");
      li.append(h("ul", { role: "group" }, ...below.map(item)));
    }
    return li;
  };
  return h("ul", { role: "tree", "aria-label": `PCI topology of ${data.machine}` }, ...kids(null).map(item));
}

const onOff = (v: boolean | null): string => (v === null ? "unknown" : v ? "on" : "off");
const regions = (rs: Region[]): string => rs.map((r) => `${r.start}–${r.end} ${r.type}`).join(", ") || "none";

/** An AMD-Vi unit is a PCI function of its own and reports its features in EFR. */
function amdViText(a: AmdVi | undefined): string {
  if (a === undefined) return "";
  return `; AMD-Vi, PCI function ${a.bdf}, EFR ${a.efr} (${[...a.features, `${a.hostLevels}-level host page tables`].join(", ")})`;
}

function unitsAndGroups(data: Data): HTMLElement {
  const units = data.units.length === 0
    ? h("p", {}, "No IOMMU unit: neither the firmware nor the kernel lists one.")
    : h("ul", { "aria-label": "IOMMU units" }, ...data.units.map((u) =>
      h("li", {}, `${u.name} at ${u.base}: translation ${onOff(u.translation)}, interrupt remapping ${onOff(u.irqRemapping)}; scope ${u.scope.length} functions${amdViText(u.amdVi)}`)));
  const groups = h("ul", { "aria-label": "IOMMU groups", class: "groups" }, ...data.groups.map((g) =>
    h("li", { style: `background:${groupColour(g.id)}`, "data-group": String(g.id) },
      h("strong", {}, `Group ${g.id}`), ` [${g.type ?? "no domain"}]${g.domainIds === null ? "" : ` domain ${g.domainIds.join(",") || "-"}`}: ${g.devices.join(", ")}`,
      h("div", { class: "why" }, g.why.length > 0 ? "Why together: " + g.why.join("; ") : "Alone: isolated"),
      h("div", { class: "why" }, `Reserved regions: ${regions(g.reserved)}`))));
  const none = data.devices.filter((d) => d.group === null).length;
  const noGroups = data.groups.length === 0 ? [h("p", {}, `The kernel made no IOMMU groups: none of the ${data.devices.length} PCI functions is isolated by an IOMMU.`)] : [];
  const outside = data.groups.length > 0 && none > 0 ? [h("p", { class: "why" }, `${none} PCI function${none === 1 ? " is" : "s are"} in no group.`)] : [];
  return h("div", {}, h("h3", {}, "IOMMU units"), units, h("h3", {}, "Groups"), ...noGroups, groups, ...outside);
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

/**
 * How the page names a unit's fault codes: VT-d fault reasons, AMD-Vi event codes. An AMD-Vi target abort logs
 * no event: it has no code to show.
 */
interface Vendor { amd: boolean }

function faultCode(v: Vendor, reason: number | undefined): string {
  if (v.amd && reason === 0) return "";
  return ` (${v.amd ? "event" : "reason"} 0x${(reason ?? 0).toString(16)})`;
}

/** "02:01.0 (its requests carry DeviceID 02:00.0)" when the unit sees the device's requests under an alias. */
function requester(bdf: string, carried: string): string {
  return bdf === carried ? carried : `${bdf} (its requests carry DeviceID ${carried})`;
}

/** The device's walk; `bdf` is the device whose space it is, when the request carries another id (an alias). */
function showWalk(w: Walk, v: Vendor, bdf: string = w.bdf): void {
  const out = byId("walk");
  const end = w.result === "ok"
    ? h("p", { class: "ok", role: "status" }, `Translated: IOVA ${w.iova} → host ${w.hpa ?? "?"}`)
    : h("p", { class: "fault", role: "alert" }, `Fault ${w.reasonName ?? ""}${faultCode(v, w.reason)}: ${w.description ?? ""}`);
  out.replaceChildren(h("h3", {}, `Walk of ${w.iova} for ${requester(bdf, w.bdf)}`), h("ol", { "aria-label": "walk steps" }, ...w.levels.map(levelRow)), end);
}

function showMsi(m: Msi, v: Vendor, bdf: string = m.bdf): void {
  const out = byId("walk");
  const through = m.remapped === false ? "Not remapped (the device table entry passes it)" : `IRTE ${m.index ?? "-"}`;
  const body = m.result === "ok"
    ? h("p", { class: "ok", role: "status" }, `${through}: vector ${m.vector ?? "?"} to APIC ${m.destination ?? "?"} (the device wrote ${m.msi?.address ?? ""} / ${m.msi?.data ?? ""})`)
    : h("p", { class: "fault", role: "alert" }, `Interrupt blocked at IRTE ${m.index ?? "-"}: ${m.reasonName ?? ""}${faultCode(v, m.reason)}: ${m.description ?? ""}; ${m.detail ?? ""}`);
  out.replaceChildren(h("h3", {}, `MSI from ${requester(bdf, m.bdf)} through the interrupt remapping table`), body);
}

function note(text: string): void {
  byId("walk").replaceChildren(h("p", { role: "status", class: "note" }, text));
}

async function walkTyped(s: Space, v: Vendor, text: string): Promise<void> {
  let iova: bigint;
  try {
    iova = BigInt(/^0x/i.test(text.trim()) ? text.trim() : "0x" + text.trim());
  } catch {
    note(`'${text}' is not a hexadecimal address`);
    return;
  }
  const known = s.walks.find((w) => BigInt(w.iova) === iova);
  if (known !== undefined) return showWalk(known, v, s.bdf);
  if (!location.protocol.startsWith("http")) {
    note("Walking a typed address needs the served page ('iommu ui'); this exported page holds the walks listed above.");
    return;
  }
  const r = await fetch(`api/walk?bdf=${encodeURIComponent(s.bdf)}&iova=0x${iova.toString(16)}`);
  const body = (await r.json()) as Walk | { error: string };
  if ("error" in body) note(body.error);
  else showWalk(body, v, s.bdf);
}

function walkForm(s: Space, v: Vendor): HTMLElement {
  const input = h("input", { id: "iova-input", name: "iova", placeholder: "0xffffc000", size: "20" }) as HTMLInputElement;
  const form = h("form", { "aria-label": `walk an IOVA of ${s.bdf}` }, h("label", { for: "iova-input" }, "IOVA to walk: "), input, h("button", { type: "submit" }, "Walk"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void walkTyped(s, v, input.value);
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
  const v: Vendor = { amd: data.units.find((u) => u.name === d?.unit)?.amdVi !== undefined };
  const ranges = s.mappings.ranges ?? [];
  const rows = ranges.map((r) => {
    const w = s.walks.find((x) => BigInt(x.iova) >= BigInt(r.iova) && BigInt(x.iova) < BigInt(r.iova) + BigInt(r.size));
    return h("tr", {}, h("td", {}, r.iova), h("td", {}, r.hpa), h("td", {}, r.size), h("td", {}, `${r.read ? "R" : "-"}${r.write ? "W" : "-"}`),
      h("td", {}, w === undefined ? "" : walkButton(`walk ${w.iova}`, () => showWalk(w, v, s.bdf))));
  });
  const table = h("table", { "aria-label": `IOVA mappings of ${bdf}` },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "IOVA"), h("th", { scope: "col" }, "host page"), h("th", { scope: "col" }, "bytes"), h("th", { scope: "col" }, "access"), h("th", { scope: "col" }, "walk"))),
    h("tbody", {}, ...rows));
  const faults = s.walks.filter((w) => w.result === "fault").map((w) => walkButton(`walk ${w.iova} (unmapped)`, () => showWalk(w, v, s.bdf)));
  const msis = s.msi.map((m, i) => walkButton(i === 0 ? "MSI through IRTE 0" : `MSI through IRTE ${m.index ?? "?"}`, () => showMsi(m, v, s.bdf)));
  out.replaceChildren(
    h("h3", {}, `${bdf} ${d?.name ?? ""}: ${s.domainType === "identity" ? "identity domain (IOVA = host address)" : `translated domain ${s.domainType ?? ""} id ${s.mappings.domainId ?? "-"}`}`),
    h("p", {}, s.bufferPages.length > 0 ? `A buffer of ${s.bufferPages.length} scattered host pages (${s.bufferPages.join(", ")}) mapped through the DMA API reaches the device as ${ranges.length > 0 ? `IOVAs ${ranges[0]?.iova ?? ""}…` : "no IOVA"}:` : "No buffer mapped."),
    table,
    h("p", {}, "Reserved regions: " + (s.reserved.map((r) => `${r.start}–${r.end} ${r.type}`).join(", ") || "none")),
    h("div", { class: "actions" }, ...faults, ...msis),
    walkForm(s, v),
  );
}

const MARKS: Record<string, string> = { error: "FAIL", warning: "todo", info: "todo" };

function findingItem(f: Finding): HTMLElement {
  const mark = f.ok ? (f.severity === "warning" ? "warn" : "ok") : MARKS[f.severity] ?? "todo";
  return h("li", { class: `finding ${f.ok ? "passed" : f.severity}`, "data-code": f.code },
    h("strong", {}, `[${mark}] `), f.message, !f.ok && f.hint !== "" ? h("div", { class: "why" }, `hint: ${f.hint}`) : "");
}

/** A recorded host's device: what the recording says of it and the doctor's check of it. */
function showHostDevice(data: Data, bdf: string): void {
  const out = byId("device");
  const d = data.devices.find((x) => x.bdf === bdf);
  for (const b of document.querySelectorAll<HTMLElement>("button.dev")) b.setAttribute("aria-pressed", String(b.dataset["bdf"] === bdf));
  if (d === undefined) return;
  const group = data.groups.find((g) => g.id === d.group);
  const facts = h("p", {}, `${d.ids ?? ""}, ${d.type}; driver ${d.driver ?? "none"}; ${group === undefined ? "in no IOMMU group" : `IOMMU group ${group.id} (${group.devices.length} device${group.devices.length === 1 ? "" : "s"}, ${group.type ?? "no domain type"})`}${d.unit === null ? "" : `, translated by ${d.unit}`}.`);
  if (d.check === null) {
    out.replaceChildren(h("h3", {}, `${bdf} ${d.name}`), facts, h("p", {}, `${bdf} is a bridge (${d.ids ?? d.type}): bridges stay with the host, so the doctor checks endpoints, not it.`));
    return;
  }
  const { blocking, todo } = ownFindings(d);
  const hostBlocking = d.check.findings.filter((f) => f.scope === "host" && !f.ok && f.severity === "error").length;
  const verdict = d.check.ready
    ? h("p", { class: "ok", role: "status" }, `Ready for pass-through${d.check.nextSteps.length > 0 ? ": nothing blocks it; the steps below prepare it" : ""}.`)
    : h("p", { class: "fault", role: "alert" }, `Not ready for pass-through: ${plural(blocking.length + hostBlocking, "blocking finding")}.`);
  const own = blocking.length + todo.length === 0
    ? "The check finds nothing to fix on this device itself."
    : `On this device itself: ${blocking.length} blocking, ${todo.length} to do.`;
  out.replaceChildren(
    h("h3", {}, `${bdf} ${d.name}`), facts, verdict,
    h("p", {}, `${own}${hostBlocking > 0 ? ` ${plural(hostBlocking, "blocking problem")} of the host (in the doctor's list above) also stop${hostBlocking === 1 ? "s" : ""} it.` : ""}`),
    h("ul", { "aria-label": `check of ${bdf}`, class: "findings" }, ...d.check.findings.map(findingItem)),
    d.check.nextSteps.length === 0 ? "" : h("ol", { "aria-label": "next steps" }, ...d.check.nextSteps.map((st) => h("li", {}, h("code", {}, st)))),
  );
}

/** The doctor's verdict on a recorded host and its problems (`iommu status`). */
function doctor(host: Host): HTMLElement {
  const blocking = host.problems.filter((p) => p.severity === "error").length;
  const verdict = host.ready
    ? h("p", { class: "ok" }, `Ready: the IOMMU is active and ${host.interruptRemapping === "enabled" ? "interrupts are remapped" : "VFIO accepts unsafe interrupts"}.`)
    : h("p", { class: "fault" }, `Not ready: ${plural(blocking, "problem")} block${blocking === 1 ? "s" : ""} device assignment.`);
  const facts = h("p", {}, `IOMMU ${host.iommuActive ? "active" : "not active"}; interrupt remapping ${host.interruptRemapping}; DMA policy ${host.dmaPolicy ?? "none"}.`);
  const list = host.problems.length === 0
    ? h("p", {}, "The doctor finds no problem.")
    : h("ul", { "aria-label": "the doctor's problems", class: "findings" }, ...host.problems.map((p) =>
      h("li", { class: `finding ${p.severity}`, "data-code": p.code }, h("strong", {}, `${p.severity} ${p.code}: `), p.message, h("div", { class: "why" }, `hint: ${p.hint}`))));
  return h("div", {}, verdict, facts, list);
}

function storyView(st: Story): HTMLElement {
  const col = (r: Story["runs"][number]): HTMLElement => h("div", { class: "run", role: "group", "aria-label": r.label },
    h("h4", {}, r.label), h("p", {}, h("code", {}, r.cmdline || "(default)")), h("p", { class: "summary" }, r.summary),
    h("dl", {}, ...Object.entries(r.numbers).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))])));
  const skipped = st.skipped === undefined ? [] : [h("p", {}, `Not run here: ${st.skipped}`)];
  return h("div", {}, ...skipped, h("div", { class: "timeline" }, ...st.runs.map(col)));
}

/** A row of tabs, one per item; choosing one renders it in the panel below. */
function tabs<T>(label: string, items: T[], id: (x: T) => string, title: (x: T) => string, render: (x: T) => HTMLElement): HTMLElement {
  const panel = h("div", { role: "tabpanel", "aria-label": label });
  const list = h("div", { role: "tablist", "aria-label": label }, ...items.map((x) => {
    const b = h("button", { type: "button", role: "tab", "aria-selected": "false", "data-tab": id(x) }, title(x));
    b.addEventListener("click", () => {
      for (const t of list.querySelectorAll("[role=tab]")) t.setAttribute("aria-selected", String(t === b));
      panel.replaceChildren(h("h3", {}, title(x)), render(x));
    });
    return b;
  }));
  return h("div", {}, list, panel);
}

const seconds = (ns: number): string => `${(ns / 1e9).toFixed(6)} s`;

function requestText(q: Request): string {
  const what = q.data !== undefined ? `data ${q.data}` : `${q.length} B`;
  const where = q.outcome === "blocked"
    ? `BLOCKED, fault ${q.fault?.reason ?? "?"} ${q.fault?.name ?? ""}${q.fault?.recorded === false ? " (not recorded)" : ""}`
    : q.interrupt !== undefined
      ? q.interrupt.deliveredTo.map((t) => t.split(" -> ")[1] ?? t).join("; ") || "delivered nowhere"
      : q.outcome === "unsupported" ? "unsupported request" : q.translations.map((t) => `${t.hpa} (${t.landed})`).join(", ");
  return `${q.device} ${q.op} ${q.addr} ${what}: ${q.purpose} → ${where}`;
}

interface TimelineEvent { ns: number; kind: "step" | "request" | "interrupt" | "blocked"; text: string }

function runEvents(r: ScenarioRun): TimelineEvent[] {
  const evs: TimelineEvent[] = [
    ...r.steps.map((st): TimelineEvent => ({ ns: st.ns, kind: "step", text: st.text })),
    ...r.requests.map((q): TimelineEvent => ({ ns: q.ns, kind: q.outcome === "blocked" ? "blocked" : "request", text: requestText(q) })),
    ...r.interrupts.map((d): TimelineEvent => ({ ns: d.ns, kind: "interrupt", text: `interrupt from ${d.source} ${d.posted ? "posted" : d.remapped ? "remapped" : "not remapped"}: vector ${d.vector} on CPU ${d.cpu} → ${d.to}` })),
  ];
  return evs.map((e, i) => ({ e, i })).sort((a, b) => a.e.ns - b.e.ns || a.i - b.i).map((x) => x.e);
}

/** One run of a scenario: its verdict, its events on the simulated-time axis shared by the runs, the fault records and the memory the device wrote. */
function runColumn(r: ScenarioRun, t0: number, t1: number): HTMLElement {
  const span = Math.max(1, t1 - t0);
  const events = runEvents(r).map((e) => h("li", { class: `ev ${e.kind}` },
    h("span", { class: "track", "aria-hidden": "true" }, h("span", { class: "tick", style: `left:${(((e.ns - t0) / span) * 100).toFixed(2)}%` })),
    h("time", {}, seconds(e.ns)), ` ${e.kind === "step" ? "" : `${e.kind}: `}${e.text}`));
  const faults = r.faults.length === 0
    ? h("p", {}, "The host read no fault record.")
    : h("ul", { "aria-label": `fault records of ${r.label}` }, ...r.faults.map((f) => h("li", { class: "fault-record" },
      `[${f.type}] device ${f.source} ${f.type === "INTR-REMAP" ? "index" : "address"} ${f.addr}: reason ${f.reason} ${f.name} (${f.text})`)));
  const fr = r.faultRecording;
  const lost = fr.overflowed + fr.collapsed > 0 ? [h("p", {}, `Fault recording: ${fr.recorded} recorded, ${fr.overflowed} overflowed, ${fr.collapsed} collapsed.`)] : [];
  const writes = r.requests.filter((q) => q.op === "write" && q.outcome === "ok").flatMap((q) => q.translations.map((t) => `${t.length} B at host ${t.hpa} (${t.landed}): ${q.purpose}`));
  const memory = writes.length === 0 ? h("p", {}, "The device wrote no memory.") : h("ul", { "aria-label": `memory written in ${r.label}` }, ...writes.map((w) => h("li", {}, w)));
  const settings = Object.entries(r.settings).map(([k, v]) => `${k}=${String(v)}`).join(", ");
  return h("div", { class: "run", role: "group", "aria-label": r.label },
    h("h4", {}, r.label),
    h("p", { class: r.verdict.protected ? "ok" : "fault" }, `${r.verdict.protected ? "PROTECTED" : "NOT PROTECTED"}: ${r.verdict.summary}`),
    h("p", { class: "bits" }, settings),
    h("ol", { class: "tl", "aria-label": `timeline of ${r.label}` }, ...events),
    h("h5", {}, `Fault records (${r.faults.length})`), faults, ...lost,
    h("h5", {}, `Memory written by devices (${writes.length})`), memory,
    h("h5", {}, "Numbers"), h("dl", {}, ...Object.entries(r.numbers).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))])));
}

function scenarioView(sc: Scenario): HTMLElement {
  const all = sc.runs.flatMap((r) => runEvents(r).map((e) => e.ns));
  const t0 = Math.min(...all);
  const t1 = Math.max(...all);
  return h("div", {},
    h("p", { class: "axis" }, `Simulated time from ${seconds(t0)} to ${seconds(t1)}, the same axis for the ${sc.runs.length} runs side by side.`),
    h("div", { class: "timeline" }, ...sc.runs.map((r) => runColumn(r, t0, t1))));
}

function section(id: string, title: string, ...body: Child[]): HTMLElement {
  return h("section", { "aria-labelledby": id }, h("h2", { id }, title), ...body);
}

function machinePage(data: Data): HTMLElement[] {
  const select = (bdf: string): void => showSpace(data, bdf);
  const scenarios = data.scenarios.length > 0
    ? tabs("scenarios", data.scenarios, (sc) => sc.name, (sc) => `${sc.name}: ${sc.title}`, scenarioView)
    : h("p", {}, data.scenariosSkipped === null ? "Left out of this page (--no-stories)." : `Not run on this machine: ${data.scenariosSkipped}`);
  const stories = data.stories.length > 0
    ? tabs("stories", data.stories, (st) => st.id, (st) => `(${st.id}) ${st.title}`, storyView)
    : h("p", {}, "Left out of this page (--no-stories).");
  return [
    h("header", {}, h("h1", {}, `IOMMU view of ${data.machine}`), h("p", {}, `Simulated machine booted with ${data.cmdline === "" ? "no IOMMU option on its command line (the IOMMU is on by default)" : `"${data.cmdline}"`}. Click a device, then a walk.`)),
    h("main", {},
      section("h-machine", "1. Machine", h("div", { class: "cols" }, machineTree(data, select), unitsAndGroups(data))),
      section("h-space", "2. Address space", h("div", { id: "space", "aria-live": "polite" }, "Choose a device in the tree.")),
      section("h-walk", "3. Page walk", h("div", { id: "walk", "aria-live": "polite" }, "Choose a walk in the address space.")),
      section("h-stories", "4. Stories: without and with the IOMMU", stories),
      section("h-scenarios", "5. Scenarios: timelines without and with the protection", scenarios),
    ),
  ];
}

function snapshotPage(data: Data, host: Host): HTMLElement[] {
  const select = (bdf: string): void => showHostDevice(data, bdf);
  const recorded = [host.recordedAt === null ? "" : ` on ${host.recordedAt}`, host.recordedBy === null ? "" : ` by ${host.recordedBy}`].join("");
  return [
    h("header", {}, h("h1", {}, `IOMMU view of ${data.machine} (recorded)`),
      h("p", {}, `From ${host.source}, recorded${recorded}; kernel ${host.kernel ?? "unknown"}, command line "${data.cmdline}". Click a device for the doctor's check of it.`),
      h("p", { role: "note", class: "absent" }, data.absent ?? "")),
    h("main", {},
      section("h-machine", "1. Host", h("div", { class: "cols" }, machineTree(data, select), unitsAndGroups(data))),
      section("h-doctor", "2. The doctor", doctor(host)),
      section("h-device", "3. Device", h("div", { id: "device", "aria-live": "polite" }, "Choose a device in the tree.")),
    ),
  ];
}

function main(): void {
  const text = byId("iommu-data").textContent ?? "{}";
  const data = JSON.parse(text) as Data;
  document.title = `iommu ui — ${data.machine}`;
  byId("app").replaceChildren(...(data.host === null ? machinePage(data) : snapshotPage(data, data.host)));
}

main();
