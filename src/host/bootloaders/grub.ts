/**
 * GRUB 2 configured through /etc/default/grub (and /etc/default/grub.d/*.cfg, which Debian/Ubuntu's
 * grub-mkconfig sources afterwards). The file is shell: the kernel parameters live in
 * GRUB_CMDLINE_LINUX (every menu entry, recovery included) and GRUB_CMDLINE_LINUX_DEFAULT (normal entries only).
 * Edits touch only the quoted value of those assignments; comments, quoting style and every other line stay
 * byte-for-byte. After the edit the menu must be regenerated: update-grub (Debian, Ubuntu),
 * grub2-mkconfig -o /boot/grub2/grub.cfg (Fedora, RHEL, openSUSE) or grub-mkconfig -o /boot/grub/grub.cfg.
 */
import { IommuError } from "../../core/errors.js";
import type { SysfsView } from "../sysfs-view.js";
import { editArgsText, splitArgs } from "../bootargs-params.js";
import { findProgram, type Bootloader, type BootloaderPlan, type FileEdit, type ParamEdit } from "./types.js";

export const GRUB_DEFAULT = "/etc/default/grub";
export const GRUB_DEFAULT_D = "/etc/default/grub.d";

type VarName = "GRUB_CMDLINE_LINUX" | "GRUB_CMDLINE_LINUX_DEFAULT";

/** One `GRUB_CMDLINE_LINUX[_DEFAULT]=…` line, split so the value can be replaced without touching the rest. */
export interface GrubAssignment {
  path: string;
  /** 0-based line index in its file. */
  line: number;
  name: VarName;
  /** Everything up to and including "=". */
  head: string;
  quote: '"' | "'" | "";
  value: string;
  /** Everything after the closing quote (spaces, a comment, "\r"). */
  tail: string;
}

const ASSIGN = /^(\s*(?:export\s+)?(GRUB_CMDLINE_LINUX(?:_DEFAULT)?)=)(.*)$/;

function unsupported(path: string, line: number, why: string): IommuError {
  return new IommuError("BOOTARGS_UNPARSEABLE", `${path}:${line + 1}: ${why}`, {
    hint: "edit the kernel parameters in that file by hand, or simplify the line to NAME=\"…\"",
  });
}

/** Finds every kernel-parameter assignment in a /etc/default/grub-style file. */
export function parseGrubAssignments(path: string, text: string): GrubAssignment[] {
  const out: GrubAssignment[] = [];
  const fileLines = text.split("\n");
  fileLines.forEach((raw, line) => {
    const m = ASSIGN.exec(raw);
    if (!m) return;
    const head = m[1] ?? "";
    const name = m[2] as VarName;
    const rest = m[3] ?? "";
    const q = rest[0];
    if (q === '"' || q === "'") {
      let i = 1;
      while (i < rest.length && rest[i] !== q) i += q === '"' && rest[i] === "\\" ? 2 : 1;
      if (i >= rest.length) throw unsupported(path, line, `the value of ${name} continues on the next line`);
      const tail = rest.slice(i + 1);
      if (!/^(\s*(#.*)?)$/.test(tail)) throw unsupported(path, line, `the value of ${name} is not a single quoted string`);
      out.push({ path, line, name, head, quote: q, value: rest.slice(1, i), tail });
      return;
    }
    const word = /^[^\s#]*/.exec(rest)?.[0] ?? "";
    const tail = rest.slice(word.length);
    if (/["'`\\]/.test(word) || !/^(\s*(#.*)?)$/.test(tail)) {
      throw unsupported(path, line, `the value of ${name} is not a single quoted string`);
    }
    out.push({ path, line, name, head, quote: "", value: word, tail });
  });
  return out;
}

const REF = /^\$\{?(GRUB_CMDLINE_LINUX(?:_DEFAULT)?)\}?$/;

/** The parameters the kernel gets from these assignments, in file order ($VAR references expanded). */
export function effectiveGrubArgs(assignments: readonly GrubAssignment[]): string[] {
  const vars: Record<VarName, string[]> = { GRUB_CMDLINE_LINUX: [], GRUB_CMDLINE_LINUX_DEFAULT: [] };
  for (const a of assignments) {
    const next: string[] = [];
    for (const tok of splitArgs(a.value)) {
      const ref = REF.exec(tok);
      if (ref) next.push(...vars[ref[1] as VarName]);
      else next.push(tok);
    }
    vars[a.name] = next;
  }
  return [...vars.GRUB_CMDLINE_LINUX, ...vars.GRUB_CMDLINE_LINUX_DEFAULT];
}

function rewriteValue(a: GrubAssignment, remove: readonly string[], add: readonly string[]): string {
  const value = editArgsText(a.value, remove, add);
  const quote = a.quote === "" && /\s/.test(value) ? '"' : a.quote;
  return `${a.head}${quote}${value}${quote}${a.tail}`;
}

/**
 * Applies an edit to a set of GRUB default files (main file first, then grub.d in order). Removals apply to
 * every assignment; additions go to the assignment that takes effect last — GRUB_CMDLINE_LINUX_DEFAULT when the
 * files set it, else GRUB_CMDLINE_LINUX — or to a new GRUB_CMDLINE_LINUX line at the end of the main file.
 */
export function editGrubFiles(files: ReadonlyArray<{ path: string; text: string }>, edit: ParamEdit): FileEdit[] {
  const parsed = files.map((f) => ({ ...f, assignments: parseGrubAssignments(f.path, f.text) }));
  const all = parsed.flatMap((p) => p.assignments);
  const target =
    [...all].reverse().find((a) => a.name === "GRUB_CMDLINE_LINUX_DEFAULT") ??
    [...all].reverse().find((a) => a.name === "GRUB_CMDLINE_LINUX") ??
    null;
  const edits: FileEdit[] = [];
  for (const f of parsed) {
    const fileLines = f.text.split("\n");
    for (const a of f.assignments) {
      const add = a === target ? edit.add : [];
      const hits = splitArgs(a.value).some((t) => edit.remove.includes(t));
      if (add.length > 0 || hits) fileLines[a.line] = rewriteValue(a, edit.remove, add);
    }
    let after = fileLines.join("\n");
    if (target === null && edit.add.length > 0 && f === parsed[0]) {
      const sep = after === "" || after.endsWith("\n") ? "" : "\n";
      after += `${sep}GRUB_CMDLINE_LINUX="${edit.add.join(" ")}"\n`;
    }
    if (after !== f.text) edits.push({ path: f.path, before: f.text, after });
  }
  return edits;
}

function readFiles(view: SysfsView): Array<{ path: string; text: string }> {
  const main = view.readText(GRUB_DEFAULT);
  if (main === null) {
    throw new IommuError("FILE_NOT_FOUND", `${GRUB_DEFAULT}: no such file in ${view.description}`);
  }
  const files = [{ path: GRUB_DEFAULT, text: main }];
  for (const name of view.list(GRUB_DEFAULT_D) ?? []) {
    if (!name.endsWith(".cfg")) continue;
    const text = view.readText(`${GRUB_DEFAULT_D}/${name}`);
    if (text !== null) files.push({ path: `${GRUB_DEFAULT_D}/${name}`, text });
  }
  return files;
}

/** The command that rebuilds grub.cfg on this system. */
export function grubRegenerateCommand(view: SysfsView): { command: string[]; found: boolean } {
  if (findProgram(view, "update-grub")) return { command: ["update-grub"], found: true };
  if (findProgram(view, "grub2-mkconfig")) return { command: ["grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"], found: true };
  if (findProgram(view, "grub-mkconfig")) return { command: ["grub-mkconfig", "-o", "/boot/grub/grub.cfg"], found: true };
  if (view.exists("/boot/grub2/grub.cfg")) return { command: ["grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"], found: false };
  return { command: ["grub-mkconfig", "-o", "/boot/grub/grub.cfg"], found: false };
}

export const grub: Bootloader = {
  id: "grub",
  detect(view) {
    return view.exists(GRUB_DEFAULT) ? [GRUB_DEFAULT] : null;
  },
  currentArgs(view) {
    const files = readFiles(view);
    const assignments = files.flatMap((f) => parseGrubAssignments(f.path, f.text));
    return { source: files.map((f) => f.path).join(", "), args: effectiveGrubArgs(assignments) };
  },
  plan(view, edit, evidence): BootloaderPlan {
    const files = readFiles(view);
    const current = this.currentArgs(view);
    const regen = grubRegenerateCommand(view);
    const notes: string[] = [];
    if (!regen.found) notes.push(`no grub-mkconfig was found; the command shown is a guess: ${regen.command.join(" ")}`);
    return {
      id: "grub",
      name: `GRUB (${GRUB_DEFAULT})`,
      evidence,
      argsSource: current.source,
      currentArgs: current.args,
      fileEdits: editGrubFiles(files, edit),
      commands: [],
      undoCommands: [],
      regenerate: regen.command,
      notes,
    };
  },
};
