/**
 * Lab results: every check passes or fails. A check that cannot run (a CLI command that fails `--help`, a model
 * config that cannot be loaded, a capture that is missing) is a failure whose detail says why. The summary lists
 * the failures and ends with the plain line `N passed, N failed` that CI reads.
 */
export type Outcome = "pass" | "fail";

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
      const tag = c.outcome === "pass" ? "PASS" : "FAIL";
      process.stdout.write(`${tag.padEnd(7)} ${c.suite}: ${c.name}${c.detail ? ` — ${c.detail}` : ""}\n`);
    }
  }

  pass(suite: string, name: string, detail = ""): void {
    this.add({ suite, name, outcome: "pass", detail });
  }

  fail(suite: string, name: string, detail: string): void {
    this.add({ suite, name, outcome: "fail", detail });
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
    let s = "";
    if (failed.length) s += `\nFailed:\n${failed.map((c) => `  ${c.suite}: ${c.name} — ${c.detail}`).join("\n")}\n`;
    s += `\n${this.count("pass")} passed, ${this.count("fail")} failed\n`;
    return s;
  }
}
