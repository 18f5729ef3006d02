/**
 * The reference decoder for tests: ACPICA's `iasl -d` (Debian package acpica-tools). Disassembles tables and
 * parses the "[HexOffset DecimalOffset Length]  Field Name : Value [note]" lines it prints.
 * When iasl is missing, tests that need it fail (scripts/test-tools.sh, run before `npm test`, installs it).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export function iaslAvailable(): boolean {
  return spawnSync("iasl", ["-v"], { stdio: "ignore" }).status === 0;
}

/** Throws when iasl is missing: a comparison that cannot run is a failure, not a skip. */
export function requireIasl(): void {
  if (!iaslAvailable()) throw new Error("iasl is not installed: apt-get install -y acpica-tools (or bash scripts/test-tools.sh as root)");
}

export interface IaslField {
  offset: number;
  length: number;
  name: string;
  /** Value text without the trailing bracketed note. */
  value: string;
  /** Bracketed note after the value, e.g. "PCI Endpoint Device". */
  note: string | undefined;
  /** The whole line, for messages. */
  line: string;
}

const FIELD = /^\[([0-9A-Fa-f]+)h\s+(\d+)\s+([0-9A-Fa-f]+)(h?)\]\s*(.*?)\s+:\s?(.*)$/;

export function parseIaslFields(dsl: string): IaslField[] {
  const out: IaslField[] = [];
  for (const line of dsl.split(/\r?\n/)) {
    const m = FIELD.exec(line);
    if (!m) continue;
    const raw = (m[6] ?? "").trimEnd();
    const note = /\s*\[([^\]]*)\]\s*$/.exec(raw);
    out.push({
      offset: parseInt(m[1] ?? "0", 16),
      length: m[4] === "h" ? parseInt(m[3] ?? "0", 16) : parseInt(m[3] ?? "0", 10),
      name: (m[5] ?? "").trim(),
      value: (note ? raw.slice(0, note.index) : raw).trim(),
      note: note ? note[1] : undefined,
      line,
    });
  }
  return out;
}

/** Disassembles each table with one iasl run; returns the .dsl text per input (same order). */
export function disassembleMany(tables: Uint8Array[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), "iommu-kit-iasl-"));
  try {
    const names = tables.map((t, i) => {
      const n = `t${i}.dat`;
      writeFileSync(join(dir, n), t);
      return n;
    });
    // iasl stops at the first file it cannot handle when given many; run in modest batches and fall back.
    const batch = 32;
    for (let i = 0; i < names.length; i += batch) {
      try {
        execFileSync("iasl", ["-d", ...names.slice(i, i + batch)], { cwd: dir, stdio: "ignore" });
      } catch {
        // some file in the batch failed; the loop below retries missing outputs one by one
      }
    }
    return names.map((n) => {
      const dsl = join(dir, n.replace(/\.dat$/, ".dsl"));
      if (!existsSync(dsl)) {
        try {
          execFileSync("iasl", ["-d", n], { cwd: dir, stdio: "ignore" });
        } catch {
          return "";
        }
      }
      return existsSync(dsl) ? readFileSync(dsl, "latin1") : "";
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Reads every corpus table of one kind ("dmar" or "ivrs"): [name, bytes]. */
export function corpusTables(kind: "dmar" | "ivrs"): [string, Uint8Array][] {
  const dir = corpusDir(kind);
  return readdirSync(dir)
    .filter((n) => n.endsWith(".bin"))
    .sort()
    .map((n): [string, Uint8Array] => [n, new Uint8Array(readFileSync(join(dir, n)))]);
}

/**
 * The corpus of real firmware tables: IOMMU_KIT_CORPUS when set, else the project's shared corpus beside the
 * checkout (../shared/corpus/acpi, which may have grown), else the copy kept in test/corpus/acpi.
 */
export function corpusDir(kind: "dmar" | "ivrs"): string {
  const repo = fileURLToPath(new URL("../../", import.meta.url));
  const shared = join(repo, "..", "shared", "corpus", "acpi");
  const base = process.env.IOMMU_KIT_CORPUS ?? (existsSync(join(shared, kind)) ? shared : join(repo, "test", "corpus", "acpi"));
  return join(base, kind);
}
