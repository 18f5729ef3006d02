/**
 * Test helper run as a child process: applies the bootargs plan for the root given in argv[2] and kills itself
 * with SIGKILL when the apply reaches the step named in argv[3] — the closest a test can get to a power cut.
 * Usage: node --import tsx test/support/bootargs-crash-child.ts ROOT STEP
 */
import { applyBootargs, type ApplyStep } from "../../src/host/bootargs-apply.js";
import { planBootargsEdits } from "../../src/host/bootargs.js";
import { RootView } from "../../src/host/views/root-view.js";

const [root, step] = process.argv.slice(2) as [string, ApplyStep];
const view = new RootView(root);
const { plan } = planBootargsEdits(view);
applyBootargs(plan, {
  root: view,
  execute: false,
  hooks: {
    step(name) {
      if (name === step) process.kill(process.pid, "SIGKILL");
    },
  },
});
process.stdout.write("completed\n");
