/**
 * The kernel command line as Linux reads it (kernel/params.c next_arg and parse_args, lib/kstrtox.c kstrtobool):
 * the one tokenizer the simulated kernel (os/) and the host doctor (host/) share.
 *
 * - Whitespace separates parameters; a double quote toggles quoting, so `a="b c"` is one parameter.
 * - A parameter that starts with a quote loses it, and its closing quote; a value that starts with a quote loses
 *   that quote and the parameter's last character when it is a quote (`dyndbg="file x +p"` → `file x +p`).
 * - The first `=` after the first character splits name from value; a parameter without one has no value (null).
 * - A bare `--` ends the kernel's parameters: what follows goes to init.
 * - Parameter names compare with `-` and `_` equal (parameq), which `normalizedName` applies.
 */

export interface CmdlineToken {
  /** The parameter exactly as written, quotes included. */
  text: string;
  /** Offsets of `text` in the command line: [start, end). */
  start: number;
  end: number;
  /** Name with the kernel's quote handling applied. */
  name: string;
  /** Value after the first '=', quotes removed as the kernel removes them; null without '='. */
  value: string | null;
  /** The bare `--` or after it: an argument for init, not a kernel parameter. */
  forInit: boolean;
}

const isSpace = (c: string): boolean => c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\v" || c === "\f";

/** One parameter starting at `start` (not whitespace): where it ends, and its name and value. */
function nextArg(text: string, start: number): { end: number; name: string; value: string | null } {
  let i = start;
  let inQuote = false;
  const quoted = text[i] === '"';
  if (quoted) {
    i++;
    inQuote = true;
  }
  const body = i;
  let equals = -1;
  for (; i < text.length; i++) {
    const c = text[i] ?? "";
    if (isSpace(c) && !inQuote) break;
    if (equals < 0 && c === "=" && i > body) equals = i;
    if (c === '"') inQuote = !inQuote;
  }
  const end = i;
  const endsWithQuote = end > body && text[end - 1] === '"';
  if (equals < 0) {
    const name = text.slice(body, quoted && endsWithQuote ? end - 1 : end);
    return { end, name, value: null };
  }
  let v = equals + 1;
  let vEnd = end;
  if (text[v] === '"') {
    v++;
    if (endsWithQuote && vEnd > v) vEnd--;
  } else if (quoted && endsWithQuote) {
    vEnd--;
  }
  return { end, name: text.slice(body, equals), value: text.slice(v, Math.max(v, vEnd)) };
}

/** Every parameter of a command line, in order; the `--` and what follows it are marked `forInit`. */
export function tokenizeCmdline(text: string): CmdlineToken[] {
  const out: CmdlineToken[] = [];
  let forInit = false;
  let i = 0;
  while (i < text.length) {
    while (i < text.length && isSpace(text[i] ?? "")) i++;
    if (i >= text.length) break;
    const { end, name, value } = nextArg(text, i);
    if (!forInit && text.slice(i, end) === "--") forInit = true;
    out.push({ text: text.slice(i, end), start: i, end, name, value, forInit });
    i = end;
  }
  return out;
}

/** The kernel's parameters (those before `--`). */
export function kernelParams(text: string): CmdlineToken[] {
  return tokenizeCmdline(text).filter((t) => !t.forInit);
}

/** The name as parameq compares it: '-' and '_' are the same character. */
export function normalizedName(name: string): string {
  return name.replace(/-/g, "_");
}

/** kstrtobool: 1/y/Y/t/T/on → true, 0/n/N/f/F/off → false, anything else (empty, "o", "x") → null. */
export function kstrtobool(v: string | null | undefined): boolean | null {
  if (v === null || v === undefined || v === "") return null;
  const c = v[0]?.toLowerCase();
  if (c === "1" || c === "y" || c === "t") return true;
  if (c === "0" || c === "n" || c === "f") return false;
  if (c === "o") {
    const d = v[1]?.toLowerCase();
    if (d === "n") return true;
    if (d === "f") return false;
  }
  return null;
}
