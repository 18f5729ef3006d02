/**
 * The small vocabulary every part of the machine configuration is validated with: one IommuError (code
 * MACHINE_CONFIG) whose message starts with the field, and unknown keys named with the key they were probably
 * meant to be.
 */
import { IommuError } from "../core/errors.js";
import { closest } from "../core/words.js";

export function configError(field: string, message: string): IommuError {
  return new IommuError("MACHINE_CONFIG", `${field}: ${message}`, {
    hint: "see the machine configuration format in the README (iommu sim boot --machine FILE)",
  });
}

/** Rejects a key not in `known`, naming its path and the known key it was probably meant to be. */
export function checkKeys(x: Record<string, unknown>, known: readonly string[], path: string): void {
  for (const k of Object.keys(x)) {
    if (known.includes(k)) continue;
    const near = closest(k, known);
    const where = path === "" ? k : `${path}.${k}`;
    throw new IommuError("MACHINE_CONFIG", `${where}: unknown key${near === undefined ? "" : ` (did you mean '${near}'?)`}`, {
      hint: `known keys${path === "" ? "" : ` of ${path}`}: ${known.join(", ")}`,
    });
  }
}

export function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export const hexNum = (n: number): string => "0x" + n.toString(16);

/** A boolean field with a default. */
export function boolField(x: Record<string, unknown>, key: string, field: string, dflt: boolean): boolean {
  const v = x[key];
  if (v === undefined) return dflt;
  if (typeof v !== "boolean") throw configError(`${field}.${key}`, "expected true or false");
  return v;
}
