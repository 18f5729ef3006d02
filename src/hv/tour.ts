/**
 * The tour's virtualization stories: each hypervisor scenario (src/hv/scenarios.ts) told as a tour story, the
 * unprotected run first, the protected run after it, with the scenario's own numbers and verdicts.
 */
import type { TourRun, TourStory } from "../os/tour.js";
import { runScenario, SCENARIO_NAMES } from "./scenarios.js";

/** Letters after the kernel stories (a–f). */
const FIRST_ID = "g".charCodeAt(0);

export function vmStories(machine?: string): TourStory[] {
  return SCENARIO_NAMES.map((name, i) => {
    const rep = runScenario(name, machine === undefined ? {} : { machine });
    const runs: TourRun[] = [...rep.runs]
      .sort((a, b) => Number(a.verdict.protected) - Number(b.verdict.protected))
      .map((r) => ({
        label: r.label,
        cmdline: Object.entries(r.settings).map(([k, v]) => `${k}=${String(v)}`).join(" "),
        numbers: r.numbers,
        summary: `${r.verdict.protected ? "protected" : "NOT protected"}: ${r.verdict.summary}`,
      }));
    return { id: String.fromCharCode(FIRST_ID + i), title: `${rep.title} (iommu scenario ${name})`, runs };
  });
}
