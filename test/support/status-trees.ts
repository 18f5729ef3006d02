/**
 * Test support: variants of a fixture host tree. `variant(base, edits)` copies test/fixtures/hosts/BASE into a
 * temporary directory (links kept as links) and applies edits: write a file, or remove a path. Tests use it to
 * turn one recorded host into "the same host with intremap=off", "… without an IOMMU", and so on.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export const FIXTURE_HOSTS = "test/fixtures/hosts";

/** path → new contents, or null to delete the path (recursively). */
export type TreeEdits = Record<string, string | Uint8Array | null>;

export interface TreeVariant {
  root: string;
  cleanup(): void;
}

export function variant(base: string, edits: TreeEdits): TreeVariant {
  const root = mkdtempSync(join(tmpdir(), `iommu-${base}-`));
  cpSync(join(FIXTURE_HOSTS, base), root, { recursive: true, verbatimSymlinks: true });
  for (const [path, data] of Object.entries(edits)) {
    const host = join(root, path);
    if (data === null) {
      rmSync(host, { recursive: true, force: true });
    } else {
      mkdirSync(dirname(host), { recursive: true });
      rmSync(host, { force: true });
      writeFileSync(host, data);
    }
  }
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** /proc/interrupts with the given chip prefix ("IR-" for remapped, "" for not). */
export function interruptsText(prefix: "IR-" | ""): string {
  return [
    "           CPU0       CPU1",
    `  0:         36          0   ${prefix}IO-APIC    2-edge      timer`,
    `  9:          0          0   ${prefix}IO-APIC    9-fasteoi   acpi`,
    " 24:          0          0  DMAR-MSI    0-edge      dmar0",
    ` 25:       1041          0  ${prefix}PCI-MSI 32768-edge      i915`,
    "NMI:          0          0   Non-maskable interrupts",
    "",
  ].join("\n");
}
