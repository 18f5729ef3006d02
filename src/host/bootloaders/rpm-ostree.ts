/**
 * rpm-ostree (Fedora CoreOS, Silverblue, Kinoite, RHEL for Edge, bootc hosts): kernel arguments belong to the
 * deployment. `rpm-ostree kargs --append=KEY=VALUE --delete=KEY=VALUE` stages a new deployment with the change;
 * it takes effect at the next boot, and `rpm-ostree rollback` returns to the previous deployment.
 * /run/ostree-booted exists on every system booted through ostree.
 */
import type { Bootloader } from "./types.js";
import { commandPlan, isEmptyEdit, runningArgs } from "./command-based.js";

export const OSTREE_BOOTED = "/run/ostree-booted";

function kargs(append: readonly string[], del: readonly string[]): string[] {
  return ["rpm-ostree", "kargs", ...append.map((a) => `--append=${a}`), ...del.map((d) => `--delete=${d}`)];
}

export const rpmOstree: Bootloader = {
  id: "rpm-ostree",
  detect(view) {
    return view.exists(OSTREE_BOOTED) ? [OSTREE_BOOTED] : null;
  },
  currentArgs: runningArgs,
  plan(view, edit, evidence) {
    const empty = isEmptyEdit(edit);
    return commandPlan(
      "rpm-ostree",
      "rpm-ostree (kernel arguments of the deployment)",
      evidence,
      runningArgs(view),
      empty ? [] : [kargs(edit.add, edit.remove)],
      empty ? [] : [kargs(edit.remove, edit.add)],
      ["the change is staged as a new deployment and takes effect at the next boot"],
    );
  },
};
