/**
 * Errors that reach a user. Each carries a stable code (scripts match on it), a one-line message that names
 * what and where (file, byte offset, register), and an optional hint saying what to do about it.
 * Only the CLI entry point renders them; library code throws and never prints.
 */
export interface IommuErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Process exit code the CLI uses for this error (2 unless a command says otherwise). */
  exitCode?: number;
}

export class IommuError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly exitCode: number;

  constructor(code: string, message: string, options: IommuErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "IommuError";
    this.code = code;
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? 2;
  }

  toJSON(): { code: string; message: string; hint?: string } {
    return this.hint === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, hint: this.hint };
  }
}

export function isIommuError(e: unknown): e is IommuError {
  return e instanceof IommuError;
}

/** Maps a Node.js file-system error to an IommuError naming the path. */
export function fsError(e: unknown, path: string, what = "read"): IommuError {
  const err = e as NodeJS.ErrnoException;
  switch (err?.code) {
    case "ENOENT":
      return new IommuError("FILE_NOT_FOUND", `${path}: no such file or directory`, { cause: e });
    case "EACCES":
    case "EPERM":
      return new IommuError("PERMISSION_DENIED", `${path}: permission denied`, {
        cause: e,
        hint: "run as root (sudo) to read this file",
      });
    case "EISDIR":
      return new IommuError("IS_A_DIRECTORY", `${path}: is a directory, expected a file`, { cause: e });
    default:
      return new IommuError("IO_ERROR", `${path}: cannot ${what}: ${err?.message ?? String(e)}`, { cause: e });
  }
}
