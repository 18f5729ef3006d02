/**
 * A finding the doctor reports: a stable code scripts can match, a severity, a one-line message and a hint that
 * says what to do. "error" blocks device assignment, "warning" is a mistake or risk that does not block,
 * "info" is worth knowing.
 */
export type Severity = "error" | "warning" | "info";

export interface Problem {
  code: string;
  severity: Severity;
  message: string;
  hint: string;
}

export function problem(code: string, severity: Severity, message: string, hint: string): Problem {
  return { code, severity, message, hint };
}

const ORDER: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

/** Most severe first; stable within a severity. */
export function sortProblems(list: Problem[]): Problem[] {
  return list
    .map((p, i) => ({ p, i }))
    .sort((a, b) => ORDER[a.p.severity] - ORDER[b.p.severity] || a.i - b.i)
    .map((x) => x.p);
}
