/**
 * systemd-boot. Each boot menu entry is a Boot Loader Specification file, $BOOT/loader/entries/*.conf, whose
 * `options` lines (there may be several; they are joined) are the kernel command line. /etc/kernel/cmdline, when
 * present, is what kernel-install writes into entries for kernels installed later. Both are edited; the entries
 * take effect at the next boot with no regeneration step. Unified kernel images carry their command line inside
 * the image and are not covered: rebuild them after editing /etc/kernel/cmdline.
 */
import { IommuError } from "../../core/errors.js";
import type { SysfsView } from "../sysfs-view.js";
import { editArgsText, splitArgs } from "../bootargs-params.js";
import type { Bootloader, BootloaderPlan, FileEdit, ParamEdit } from "./types.js";

export const KERNEL_CMDLINE = "/etc/kernel/cmdline";
/** Where the ESP or XBOOTLDR partition is usually mounted. */
export const BOOT_DIRS = ["/boot", "/efi", "/boot/efi"] as const;

export function loaderEntries(view: SysfsView): string[] {
  const out: string[] = [];
  for (const dir of BOOT_DIRS) {
    for (const name of view.list(`${dir}/loader/entries`) ?? []) {
      if (name.endsWith(".conf")) out.push(`${dir}/loader/entries/${name}`);
    }
  }
  return out;
}

const OPTIONS = /^(\s*options[ \t]+)(.*?)(\r?)$/;

/** Edits the `options` lines of a loader entry: removals everywhere, additions on the last options line. */
export function editEntryText(text: string, edit: ParamEdit): string {
  const present = entryArgs(text);
  const add = edit.add.filter((a) => !present.includes(a));
  const fileLines = text.split("\n");
  const idx = fileLines.map((l, i) => (OPTIONS.test(l) ? i : -1)).filter((i) => i >= 0);
  const last = idx[idx.length - 1];
  for (const i of idx) {
    const m = OPTIONS.exec(fileLines[i] ?? "");
    if (!m) continue;
    fileLines[i] = `${m[1]}${editArgsText(m[2] ?? "", edit.remove, i === last ? add : [])}${m[3]}`;
  }
  let after = fileLines.join("\n");
  if (last === undefined && add.length > 0) {
    const sep = after === "" || after.endsWith("\n") ? "" : "\n";
    after += `${sep}options ${add.join(" ")}\n`;
  }
  return after;
}

export function entryArgs(text: string): string[] {
  return text
    .split("\n")
    .map((l) => OPTIONS.exec(l))
    .flatMap((m) => (m ? splitArgs(m[2] ?? "") : []));
}

/** /etc/kernel/cmdline is one line of parameters (newlines count as spaces); the line ending is kept. */
export function editCmdlineText(text: string, edit: ParamEdit): string {
  const m = /^([\s\S]*?)(\s*)$/.exec(text);
  const body = m?.[1] ?? text;
  const trail = m?.[2] ?? "";
  const present = splitArgs(body);
  return editArgsText(body, edit.remove, edit.add.filter((a) => !present.includes(a))) + trail;
}

export const systemdBoot: Bootloader = {
  id: "systemd-boot",
  detect(view) {
    const found = BOOT_DIRS.map((d) => `${d}/loader/loader.conf`).filter((p) => view.exists(p));
    if (found.length === 0) return null;
    if (view.exists(KERNEL_CMDLINE)) found.push(KERNEL_CMDLINE);
    return found;
  },
  currentArgs(view) {
    const cmdline = view.readText(KERNEL_CMDLINE);
    if (cmdline !== null) return { source: KERNEL_CMDLINE, args: splitArgs(cmdline) };
    const entries = loaderEntries(view);
    const first = entries[0];
    if (first === undefined) {
      throw new IommuError("BOOTARGS_NO_ENTRIES", `systemd-boot: no ${KERNEL_CMDLINE} and no loader entries`, {
        hint: "create /etc/kernel/cmdline with the kernel parameters, then reinstall the kernel (kernel-install add)",
      });
    }
    return { source: first, args: entryArgs(view.readText(first) ?? "") };
  },
  plan(view, edit, evidence): BootloaderPlan {
    const current = this.currentArgs(view);
    const fileEdits: FileEdit[] = [];
    const cmdline = view.readText(KERNEL_CMDLINE);
    if (cmdline !== null) {
      const after = editCmdlineText(cmdline, edit);
      if (after !== cmdline) fileEdits.push({ path: KERNEL_CMDLINE, before: cmdline, after });
    }
    for (const path of loaderEntries(view)) {
      const before = view.readText(path) ?? "";
      if (!/^\s*linux[ \t]/m.test(before)) continue; // not a Linux entry (e.g. a chain-loaded EFI binary)
      const after = editEntryText(before, edit);
      if (after !== before) fileEdits.push({ path, before, after });
    }
    const notes: string[] = [];
    if (cmdline === null) {
      notes.push(`${KERNEL_CMDLINE} does not exist: kernels installed later get their parameters elsewhere`);
    }
    return {
      id: "systemd-boot",
      name: "systemd-boot (loader entries)",
      evidence,
      argsSource: current.source,
      currentArgs: current.args,
      fileEdits,
      commands: [],
      undoCommands: [],
      regenerate: null,
      notes,
    };
  },
};
