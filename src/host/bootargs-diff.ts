/**
 * A unified diff (as `diff -u` prints it) of two small text files. Boot configuration files are a few dozen
 * lines, so a plain longest-common-subsequence table is fast enough and keeps the code obvious.
 */

interface Line {
  text: string;
  /** False only for a last line that has no trailing newline. */
  eol: boolean;
}

function lines(text: string): Line[] {
  if (text === "") return [];
  const parts = text.split("\n");
  const last = parts.pop() ?? "";
  const out = parts.map((t) => ({ text: t, eol: true }));
  if (last !== "") out.push({ text: last, eol: false });
  return out;
}

const same = (a: Line, b: Line) => a.text === b.text && a.eol === b.eol;

type Op = { kind: " " | "-" | "+"; line: Line; aIndex: number; bIndex: number };

function diffOps(a: Line[], b: Line[]): Op[] {
  const n = a.length;
  const m = b.length;
  // lcs[i][j] = length of the LCS of a[i..] and b[j..]
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    const row = lcs[i]!;
    const next = lcs[i + 1]!;
    for (let j = m - 1; j >= 0; j--) {
      row[j] = same(a[i]!, b[j]!) ? next[j + 1]! + 1 : Math.max(next[j]!, row[j + 1]!);
    }
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && same(a[i]!, b[j]!)) {
      ops.push({ kind: " ", line: a[i]!, aIndex: i, bIndex: j });
      i++;
      j++;
    } else if (j < m && (i >= n || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) {
      ops.push({ kind: "+", line: b[j]!, aIndex: i, bIndex: j });
      j++;
    } else {
      ops.push({ kind: "-", line: a[i]!, aIndex: i, bIndex: j });
      i++;
    }
  }
  // diff -u prints removals before additions inside a change block
  for (let k = 0; k < ops.length; k++) {
    let e = k;
    while (e < ops.length && ops[e]!.kind !== " ") e++;
    if (e > k) {
      const block = ops.slice(k, e);
      const sorted = [...block.filter((o) => o.kind === "-"), ...block.filter((o) => o.kind === "+")];
      ops.splice(k, e - k, ...sorted);
      k = e;
    }
  }
  return ops;
}

function range(start: number, count: number): string {
  if (count === 0) return `${start},0`;
  return count === 1 ? `${start + 1}` : `${start + 1},${count}`;
}

/**
 * Unified diff of `before` → `after` with `context` lines around each change; "" when they are equal.
 * `path` is shown as a/PATH and b/PATH (leading slash dropped), as git prints it.
 */
export function unifiedDiff(path: string, before: string, after: string, context = 3): string {
  if (before === after) return "";
  const a = lines(before);
  const b = lines(after);
  const ops = diffOps(a, b);
  const changed = ops.map((o, idx) => (o.kind === " " ? -1 : idx)).filter((x) => x >= 0);
  const hunks: Array<[number, number]> = [];
  for (const idx of changed) {
    const lo = Math.max(0, idx - context);
    const hi = Math.min(ops.length - 1, idx + context);
    const last = hunks[hunks.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else hunks.push([lo, hi]);
  }
  const name = path.replace(/^\/+/, "");
  let out = `--- a/${name}\n+++ b/${name}\n`;
  for (const [lo, hi] of hunks) {
    const slice = ops.slice(lo, hi + 1);
    const first = slice[0]!;
    const aCount = slice.filter((o) => o.kind !== "+").length;
    const bCount = slice.filter((o) => o.kind !== "-").length;
    const aStart = aCount === 0 ? first.aIndex : (slice.find((o) => o.kind !== "+")?.aIndex ?? first.aIndex);
    const bStart = bCount === 0 ? first.bIndex : (slice.find((o) => o.kind !== "-")?.bIndex ?? first.bIndex);
    out += `@@ -${range(aStart, aCount)} +${range(bStart, bCount)} @@\n`;
    for (const o of slice) {
      out += `${o.kind}${o.line.text}\n`;
      if (!o.line.eol) out += "\\ No newline at end of file\n";
    }
  }
  return out;
}
