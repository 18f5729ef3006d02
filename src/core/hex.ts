/** Hex formatting shared by every layer. Addresses and 64-bit values are printed lower-case with "0x". */

/** "0x…" for a non-negative integer (number or bigint). `width` pads with zeros to that many digits. */
export function hex(v: number | bigint, width = 0): string {
  const s = v.toString(16);
  return "0x" + (s.length < width ? "0".repeat(width - s.length) + s : s);
}

/** Upper-case hex digits without prefix, zero-padded: the way iasl and lspci print fields. */
export function hexDigits(v: number | bigint, width: number): string {
  return v.toString(16).toUpperCase().padStart(width, "0");
}

/** Parses "0x1f", "1f", "1Fh" or decimal-with-0d prefix-free hex into a bigint; null when not hex. */
export function parseHexBig(text: string): bigint | null {
  let t = text.trim().toLowerCase().replace(/_/g, "");
  if (t.startsWith("0x")) t = t.slice(2);
  else if (t.endsWith("h")) t = t.slice(0, -1);
  if (!/^[0-9a-f]+$/.test(t)) return null;
  return BigInt("0x" + t);
}
