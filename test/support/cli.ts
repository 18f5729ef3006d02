/** Runs the CLI in-process and captures its output, exactly as the `iommu` binary would print it. */
import { runCliReporting } from "../../src/cli/main.js";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function cli(argv: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const code = await runCliReporting(argv, {
    debug: argv.includes("--debug"),
    env,
    out: (t) => void (stdout += t),
    err: (t) => void (stderr += t),
  });
  return { code, stdout, stderr };
}
