/**
 * Runs the `iommu` entry point in a child process for which file permissions apply. As root that means dropping
 * CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH with util-linux's setpriv (the child stays uid 0, so it can still read
 * the checkout, but a mode-000 file is refused as it would be for any user); otherwise the child runs as is.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { CliResult } from "./cli.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const SETPRIV = "/usr/bin/setpriv";
const DROP = "-dac_override,-dac_read_search";

/** The command line that runs `node args…` with file permissions enforced. Throws when that cannot be arranged. */
export function permissionCheckedCommand(args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [process.execPath, args];
  if (!existsSync(SETPRIV)) {
    throw new Error(`running as root, ${SETPRIV} is needed to test refused reads (apt-get install -y util-linux)`);
  }
  return [SETPRIV, [`--inh-caps=${DROP}`, `--bounding-set=${DROP}`, process.execPath, ...args]];
}

/** `iommu argv…` run from source in a child that file permissions bind. */
export function cliWithPermissions(argv: string[]): CliResult {
  const [cmd, args] = permissionCheckedCommand(["--import", "tsx", "test/support/iommu-child.ts", ...argv]);
  const r = spawnSync(cmd, args, { cwd: REPO, encoding: "utf8" });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
