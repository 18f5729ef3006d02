// Decode a DMAR table (the bytes of /sys/firmware/acpi/tables/DMAR) and list what the firmware tells the kernel:
// the remapping units, which devices each covers, and the memory some devices must keep mapped.
// Usage: node decode-dmar.mjs [FILE]   (default: this machine's table)
import { readFileSync } from "node:fs";
import { decodeDmar, encodeDmar } from "iommu-kit/acpi";

const file = process.argv[2] ?? "/sys/firmware/acpi/tables/DMAR";
const hex2 = (n) => n.toString(16).padStart(2, "0");
// A device scope names a device by its start bus and the (device, function) path through bridges below it.
const scopeText = (d) => `${d.type} ${hex2(d.startBus)}:${d.path.map((p) => `${hex2(p.device)}.${p.function}`).join("/")}`;
const bytes = new Uint8Array(readFileSync(file));
const dmar = decodeDmar(bytes);

console.log(`${dmar.oemId.trim()} ${dmar.oemTableId.trim()}: host address width ${dmar.hostAddressWidth} bits, interrupt remapping ${dmar.flags.interruptRemapping ? "supported" : "not supported"}`);
for (const s of dmar.structures) {
  if (s.type === "DRHD") {
    const listed = s.scopes.map(scopeText).join(", ");
    const covers = s.flags.includePciAll ? `every device no other unit lists${listed ? ` (and ${listed})` : ""}` : listed;
    console.log(`DRHD segment ${s.segment} registers at ${s.registerBase}: ${covers}`);
  } else if (s.type === "RMRR") {
    console.log(`RMRR ${s.base}-${s.limit} for ${s.scopes.map(scopeText).join(", ")}`);
  }
}
// The codec is exact: encoding the decoded table gives back the same bytes.
const again = encodeDmar(dmar, { keepChecksum: true });
console.log(`re-encoded: ${again.length === bytes.length && again.every((b, i) => b === bytes[i]) ? "identical" : "different"} (${bytes.length} bytes)`);
