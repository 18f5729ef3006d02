/**
 * The tour's virtualization stories: each hypervisor scenario (src/hv/scenarios.ts) told as a tour story, the
 * unprotected run first, the protected run after it, with the scenario's own numbers and verdicts.
 */
import { IommuError } from "../core/errors.js";
import type { TourRun, TourStory } from "../os/tour.js";
import { runScenario, SCENARIO_NAMES, type ScenarioReport } from "./scenarios.js";

/** Letters after the kernel stories (a–f). */
const FIRST_ID = "g".charCodeAt(0);

/** The id of the tour story that tells scenario number `index` (g, h, …). */
export function scenarioStoryId(index: number): string {
  return String.fromCharCode(FIRST_ID + index);
}

/** A scenario's report told as a tour story: the unprotected run first, with its numbers and verdict. */
export function scenarioStory(rep: ScenarioReport, id: string): TourStory {
  const runs: TourRun[] = [...rep.runs]
    .sort((a, b) => Number(a.verdict.protected) - Number(b.verdict.protected))
    .map((r) => ({
      label: r.label,
      cmdline: Object.entries(r.settings).map(([k, v]) => `${k}=${String(v)}`).join(" "),
      numbers: r.numbers,
      summary: `${r.verdict.protected ? "protected" : "NOT protected"}: ${r.verdict.summary}`,
    }));
  return { id, title: `${rep.title} (iommu scenario ${rep.name})`, runs };
}

/** The story of a scenario the machine cannot run, with the reason. */
export function skippedScenarioStory(name: string, id: string, why: string): TourStory {
  return { id, title: `iommu scenario ${name}`, runs: [], skipped: why };
}

function vmStory(name: string, id: string, machine?: string): TourStory {
  try {
    return scenarioStory(runScenario(name, machine === undefined ? {} : { machine }), id);
  } catch (e) {
    // The scenarios need q35's layout; on another machine the story says which part is missing.
    if (!(e instanceof IommuError) || e.code !== "SCENARIO_MACHINE") throw e;
    return skippedScenarioStory(name, id, e.message);
  }
}

/** Runs every scenario as a story; `onStory` sees each as soon as it has run. */
export function vmStories(machine?: string, onStory?: (s: TourStory) => void): TourStory[] {
  return SCENARIO_NAMES.map((name, i) => {
    const s = vmStory(name, scenarioStoryId(i), machine);
    onStory?.(s);
    return s;
  });
}
