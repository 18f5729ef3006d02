/**
 * Lab results: every check is passed, failed, or not run (with the reason, e.g. a CLI command that does not
 * exist yet). Not-run checks are listed but are not failures. The summary ends with the plain line
 * `N passed, N failed` that CI reads.
 */
export type Outcome = "pass" | "fail" | "skip";

export interface Check {
  suite: string;
  name: string;
  outcome: Outcome;
  detail: string;
}

export class Report {
  readonly checks: Check[] = [];
  readonly notes: string[] = [];

  constructor(private readonly echo = true) {}

  private add(c: Check): void {
    this.checks.push(c);
    if (this.echo) {
      const tag = c.outcome === "pass" ? "PASS" : c.outcome === "fail" ? "FAIL" : "NOT RUN";
      process.stdout.write(`${tag.padEnd(7)} ${c.suite}: ${c.name}${c.detail ? ` — ${c.detail}` : ""}\n`);
    }
  }

  pass(suite: string, name: string, detail = ""): void {
    this.add({ suite, name, outcome: "pass", detail });
  }

  fail(suite: string, name: string, detail: string): void {
    this.add({ suite, name, outcome: "fail", detail });
  }

  skip(suite: string, name: string, reason: string): void {
    this.add({ suite, name, outcome: "skip", detail: reason });
  }

  /** Passes when `ok`, else fails with `detail`. Returns `ok`. */
  check(suite: string, name: string, ok: boolean, detail: string): boolean {
    if (ok) this.pass(suite, name);
    else this.fail(suite, name, detail);
    return ok;
  }

  note(text: string): void {
    this.notes.push(text);
    if (this.echo) process.stdout.write(`        ${text}\n`);
  }

  count(o: Outcome): number {
    return this.checks.filter((c) => c.outcome === o).length;
  }

  summary(): string {
    const failed = this.checks.filter((c) => c.outcome === "fail");
    const skipped = this.checks.filter((c) => c.outcome === "skip");
    let s = "";
    if (failed.length) s += `\nFailed:\n${failed.map((c) => `  ${c.suite}: ${c.name} — ${c.detail}`).join("\n")}\n`;
    if (skipped.length) s += `\nNot run:\n${skipped.map((c) => `  ${c.suite}: ${c.name} — ${c.detail}`).join("\n")}\n`;
    s += `\n${this.count("pass")} passed, ${this.count("fail")} failed, ${this.count("skip")} skipped\n`;
    return s;
  }
}
