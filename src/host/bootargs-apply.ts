/**
 * Applies and undoes a boot-parameter change on a real root ("/" or a --root directory).
 *
 * Crash safety. Every file is replaced by the classic sequence: write a temporary file in the same directory,
 * fsync it, rename it over the target, fsync the directory. rename(2) within one file system is atomic, so at
 * any instant the target holds either all of the old bytes or all of the new ones, never a truncated mix.
 * Order of an apply:
 *   1. each original is copied, byte for byte and with its mode, to PATH.iommu-kit.bak (itself written atomically);
 *   2. a journal (/var/lib/iommu-kit/bootargs-journal.json) records every file with the SHA-256 of its old and new
 *      contents — from here on `--undo` can always restore;
 *   3. each target is replaced atomically;
 *   4. the journal is marked "applied", then the boot menu is regenerated (or, under --root, the command is
 *      only reported, because it would act on the running system rather than the tree).
 * A kill before step 2 leaves the targets untouched (stale backups are harmless and overwritten next time);
 * a kill after it leaves each target old or new, and `--undo` restores the originals from the backups.
 * Undo verifies each backup against the journal's hash before writing, refuses to overwrite a file that was
 * changed by something else since (unless forced), and removes the journal only after every file is restored.
 */
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import { IommuError, fsError } from "../core/errors.js";
import { atomicWriteFile, fsyncDir } from "../core/fs.js";
import type { RootView } from "./views/root-view.js";
import { commandLine } from "./bootargs.js";

export const JOURNAL_PATH = "/var/lib/iommu-kit/bootargs-journal.json";

/** Where a kind of change keeps its journal, and the command that undoes it (named in messages). */
export interface JournalKind {
  path: string;
  undo: string;
}

export const BOOTARGS_JOURNAL: JournalKind = { path: JOURNAL_PATH, undo: "iommu bootargs --undo" };

/**
 * A change to make and record: whole-file rewrites (`before: null` creates a file that must not exist yet;
 * undo removes it again), commands that own their configuration, their inverses, and a regenerate command.
 * A boot loader's plan is one; `iommu bind --persist --early` makes another.
 */
export interface ChangePlan {
  id: string;
  fileEdits: ReadonlyArray<{ path: string; before: string | null; after: string }>;
  commands: string[][];
  undoCommands: string[][];
  regenerate: string[] | null;
}
export const BACKUP_SUFFIX = ".iommu-kit.bak";
const JOURNAL_FORMAT = "iommu-kit/bootargs-journal";
const JOURNAL_VERSION = 1;

export type ApplyStep = "backup-written" | "journal-written" | "temp-written" | "renamed" | "journal-applied";

export { atomicWriteFile };

export interface ApplyHooks {
  /** Called after each durable step; tests use it to inject failures and kills. */
  step?(name: ApplyStep, path: string): void;
}

export interface CommandResult {
  status: number | null;
  stdout: string;
  stderr: string;
  error?: Error;
}

export type Runner = (argv: readonly string[]) => CommandResult;

export const defaultRunner: Runner = (argv) => {
  const r = spawnSync(argv[0] ?? "", argv.slice(1), { encoding: "utf8" });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "", ...(r.error ? { error: r.error } : {}) };
};

export interface ApplyOptions {
  /** The system to change: RootView("/") for the live system, or a root prefix (links resolve inside it). */
  root: RootView;
  /** Run commands (regenerate, grubby, …). False under --root: they are reported instead. */
  execute: boolean;
  hooks?: ApplyHooks;
  run?: Runner;
  now?: () => Date;
  /** The journal to use (default: bootargs'). */
  journal?: JournalKind;
}

interface JournalFile {
  path: string;
  backup: string;
  mode: number;
  sha256Before: string;
  sha256After: string;
  /** The apply created the file (no backup): undo removes it. */
  created?: boolean;
}

export interface Journal {
  format: typeof JOURNAL_FORMAT;
  version: number;
  state: "applying" | "applied";
  createdAt: string;
  bootloader: string;
  files: JournalFile[];
  undoCommands: string[][];
  regenerate: string[] | null;
}

export interface ApplyResult {
  changed: boolean;
  files: Array<{ path: string; backup: string }>;
  journal: string | null;
  /** Commands that ran, in order. */
  ran: string[][];
  /** Commands the user still has to run (under --root). */
  pending: string[][];
}

export type UndoResult = ApplyResult;

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Maps an absolute path on the target system to the real file (symbolic links resolve inside the root). */
function hostPath(root: RootView, abs: string): string {
  return root.hostPath(abs);
}

function readBytes(real: string, shown: string): Buffer {
  try {
    return readFileSync(real);
  } catch (e) {
    throw fsError(e, shown);
  }
}

function readJournal(root: RootView, kind: JournalKind): Journal | null {
  const jp = kind.path;
  const real = hostPath(root, jp);
  if (!existsSync(real)) return null;
  const text = readBytes(real, jp).toString("utf8");
  let j: Partial<Journal>;
  try {
    j = JSON.parse(text) as Partial<Journal>;
  } catch {
    throw new IommuError("JOURNAL_CORRUPT", `${jp}: not valid JSON`, {
      hint: `the originals are in the *${BACKUP_SUFFIX} files next to each edited file; restore them by hand`,
    });
  }
  if (j.format !== JOURNAL_FORMAT || !Array.isArray(j.files)) {
    throw new IommuError("JOURNAL_CORRUPT", `${jp}: not an iommu-kit change journal`);
  }
  if (typeof j.version !== "number" || j.version > JOURNAL_VERSION) {
    throw new IommuError("JOURNAL_VERSION", `${jp}: version ${String(j.version)} was written by a newer iommu-kit`, {
      hint: "undo with the iommu-kit version that applied the change",
    });
  }
  return j as Journal;
}

function writeJournal(root: RootView, j: Journal, kind: JournalKind): void {
  const real = hostPath(root, kind.path);
  try {
    mkdirSync(dirname(real), { recursive: true, mode: 0o755 });
  } catch (e) {
    throw fsError(e, dirname(kind.path), "create");
  }
  atomicWriteFile(real, Buffer.from(JSON.stringify(j, null, 2) + "\n"), { mode: 0o644, shown: kind.path });
}

function runAll(commands: readonly string[][], run: Runner, ran: string[][], hint: string): void {
  for (const argv of commands) {
    const r = run(argv);
    if (r.error !== undefined || r.status !== 0) {
      const missing = (r.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
      const detail = missing
        ? "command not found"
        : r.error
          ? r.error.message
          : `exit status ${String(r.status)}${r.stderr.trim() ? `: ${r.stderr.trim().split("\n").pop() ?? ""}` : ""}`;
      throw new IommuError("COMMAND_FAILED", `'${commandLine(argv)}' failed: ${detail}`, {
        hint,
      });
    }
    ran.push([...argv]);
  }
}

type Staged = JournalFile & { real: string; original: Buffer; next: Buffer; uid?: number; gid?: number };

/** Reads each file the plan edits and checks it still holds what the plan was made from. */
function stage(plan: ChangePlan, root: RootView): Staged[] {
  return plan.fileEdits.map((e) => {
    const real = hostPath(root, e.path);
    const next = Buffer.from(e.after, "utf8");
    if (e.before === null) {
      if (existsSync(real)) {
        throw new IommuError("BOOTARGS_CHANGED", `${e.path}: exists now, but did not when the change was planned`, { hint: "run the command again" });
      }
      return { path: e.path, backup: "", mode: 0o644, sha256Before: "", sha256After: sha256(next), created: true, real, original: Buffer.alloc(0), next };
    }
    const original = readBytes(real, e.path);
    if (!original.equals(Buffer.from(e.before, "utf8"))) {
      throw new IommuError("BOOTARGS_CHANGED", `${e.path}: changed since it was read (or is not UTF-8 text)`, {
        hint: "run the command again",
      });
    }
    const st = statSync(real);
    return {
      path: e.path, backup: e.path + BACKUP_SUFFIX, mode: st.mode & 0o7777, sha256Before: sha256(original), sha256After: sha256(next),
      real, original, next, uid: st.uid, gid: st.gid,
    };
  });
}

/** A change of commands only (tools that own their configuration): run them and record their inverses. */
function applyCommands(plan: ChangePlan, opts: ApplyOptions, kind: JournalKind, result: ApplyResult): ApplyResult {
  if (!opts.execute) {
    result.pending = plan.commands.map((c) => [...c]);
    return result;
  }
  runAll(plan.commands, opts.run ?? defaultRunner, result.ran, "check the tool's message; the change was not recorded");
  result.changed = true;
  writeJournal(opts.root, {
    format: JOURNAL_FORMAT,
    version: JOURNAL_VERSION,
    state: "applied",
    createdAt: (opts.now ?? (() => new Date()))().toISOString(),
    bootloader: plan.id,
    files: [],
    undoCommands: plan.undoCommands,
    regenerate: null,
  }, kind);
  result.journal = kind.path;
  return result;
}

/** Applies a plan. Refuses when an earlier change is still recorded in the same journal (undo it first). */
export function applyBootargs(plan: ChangePlan, opts: ApplyOptions): ApplyResult {
  const kind = opts.journal ?? BOOTARGS_JOURNAL;
  const result: ApplyResult = { changed: false, files: [], journal: null, ran: [], pending: [] };
  if (plan.fileEdits.length === 0 && plan.commands.length === 0) return result;
  const previous = readJournal(opts.root, kind);
  if (previous !== null) {
    throw new IommuError("BOOTARGS_PENDING", `an earlier change (${previous.createdAt}) is recorded in ${kind.path}`, {
      hint: `run '${kind.undo}' first, then apply again`,
    });
  }
  if (plan.fileEdits.length === 0) return applyCommands(plan, opts, kind, result);
  const files = stage(plan, opts.root);
  for (const f of files) {
    if (f.created === true) continue;
    atomicWriteFile(hostPath(opts.root, f.backup), f.original, { mode: f.mode, uid: f.uid, gid: f.gid, shown: f.backup });
    opts.hooks?.step?.("backup-written", f.path);
  }
  const journal: Journal = {
    format: JOURNAL_FORMAT,
    version: JOURNAL_VERSION,
    state: "applying",
    createdAt: (opts.now ?? (() => new Date()))().toISOString(),
    bootloader: plan.id,
    files: files.map(({ path, backup, mode, sha256Before, sha256After, created }) => ({ path, backup, mode, sha256Before, sha256After, ...(created ? { created } : {}) })),
    undoCommands: plan.undoCommands,
    regenerate: plan.regenerate,
  };
  writeJournal(opts.root, journal, kind);
  opts.hooks?.step?.("journal-written", kind.path);
  for (const f of files) {
    atomicWriteFile(f.real, f.next, { mode: f.mode, uid: f.uid, gid: f.gid, hooks: opts.hooks, shown: f.path, mkdirs: f.created === true });
    result.files.push({ path: f.path, backup: f.backup });
  }
  writeJournal(opts.root, { ...journal, state: "applied" }, kind);
  opts.hooks?.step?.("journal-applied", kind.path);
  result.changed = true;
  result.journal = kind.path;
  const after = [...plan.commands, ...(plan.regenerate ? [plan.regenerate] : [])];
  if (opts.execute) {
    runAll(after, opts.run ?? defaultRunner, result.ran, `the files were changed; fix the problem and run the command yourself, or restore with '${kind.undo}'`);
  }
  else result.pending = after.map((c) => [...c]);
  return result;
}

interface Restore {
  f: JournalFile;
  real: string;
  /** The original bytes; null for a file the apply created (undo removes it). */
  backup: Buffer | null;
  /** The file already holds what undo would leave. */
  current: boolean;
}

function currentHash(real: string, shown: string): string | null {
  try {
    return sha256(readFileSync(real));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw fsError(e, shown);
    return null;
  }
}

/** Checks every recorded file before anything is restored. */
function planRestores(journal: Journal, opts: ApplyOptions & { force?: boolean }, kind: JournalKind): Restore[] {
  return journal.files.map((f) => {
    const real = hostPath(opts.root, f.path);
    const backup = f.created === true ? null : readBytes(hostPath(opts.root, f.backup), f.backup);
    if (backup !== null && sha256(backup) !== f.sha256Before) {
      throw new IommuError("BACKUP_MISMATCH", `${f.backup}: does not match the original recorded in ${kind.path}`, {
        hint: "the backup was modified; restore the file by hand",
      });
    }
    const now = currentHash(real, f.path);
    const before = f.created === true ? null : f.sha256Before;
    if (now !== before && now !== f.sha256After && opts.force !== true) {
      throw new IommuError("BOOTARGS_MODIFIED", `${f.path}: changed by something else since the apply`, {
        hint: `${f.created === true ? "removing" : "restoring"} it would discard those changes; rerun with --force to ${f.created === true ? "remove" : "restore"} it anyway`,
      });
    }
    return { f, real, backup, current: now === before };
  });
}

function restore(r: Restore, opts: ApplyOptions): void {
  if (r.backup === null) {
    try {
      unlinkSync(r.real);
      fsyncDir(dirname(r.real));
    } catch (e) {
      throw fsError(e, r.f.path, "remove");
    }
    return;
  }
  let uid: number | undefined;
  let gid: number | undefined;
  try {
    const st = statSync(r.real);
    uid = st.uid;
    gid = st.gid;
  } catch {
    // target missing: recreate it
  }
  atomicWriteFile(r.real, r.backup, { mode: r.f.mode, uid, gid, hooks: opts.hooks, shown: r.f.path });
}

/** Restores every file recorded in the journal from its backup, byte for byte (removes created ones), and reverses commands. */
export function undoBootargs(opts: ApplyOptions & { force?: boolean }): UndoResult {
  const kind = opts.journal ?? BOOTARGS_JOURNAL;
  const journal = readJournal(opts.root, kind);
  if (journal === null) {
    throw new IommuError("NOTHING_TO_UNDO", `no applied change is recorded (${kind.path} does not exist)`);
  }
  const result: UndoResult = { changed: false, files: [], journal: kind.path, ran: [], pending: [] };
  const restores = planRestores(journal, opts, kind);
  for (const r of restores) {
    if (!r.current) {
      restore(r, opts);
      result.changed = true;
    }
    result.files.push({ path: r.f.path, backup: r.f.backup });
  }
  const commands = [...journal.undoCommands, ...(journal.files.length > 0 && journal.regenerate ? [journal.regenerate] : [])];
  if (opts.execute) {
    runAll(commands, opts.run ?? defaultRunner, result.ran, `the files were restored; fix the problem and run '${kind.undo}' again to finish`);
  }
  else result.pending = commands.map((c) => [...c]);
  if (journal.undoCommands.length > 0 && opts.execute) result.changed = true;
  const journalReal = hostPath(opts.root, kind.path);
  try {
    unlinkSync(journalReal);
    fsyncDir(dirname(journalReal));
  } catch (e) {
    throw fsError(e, kind.path, "remove");
  }
  for (const r of restores) {
    if (r.backup === null) continue;
    try {
      unlinkSync(hostPath(opts.root, r.f.backup));
    } catch {
      // a missing backup after a successful restore does not matter
    }
  }
  return result;
}
