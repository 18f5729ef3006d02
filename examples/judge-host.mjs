// Judge a Linux host's IOMMU setup from what its /sys and /proc show: here a recorded host (a directory tree
// holding a copy of /sys and /proc, or a snapshot file written by `iommu snapshot`), the live system by default.
// Usage: node judge-host.mjs [ROOT_DIR | SNAPSHOT_FILE]
import { statSync } from "node:fs";
import { RootView, SnapshotView, gatherStatus, statusExitCode } from "iommu-kit/doctor";

const where = process.argv[2] ?? "/";
const view = statSync(where).isDirectory() ? new RootView(where) : SnapshotView.load(where);
const r = gatherStatus(view);

console.log(`host: ${view.description}${r.kernel.release === null ? "" : `, kernel ${r.kernel.release}`}`);
console.log(`firmware table: ${r.platform.firmwareTable ?? "none"}, units: ${r.platform.units.map((u) => u.name ?? u.registerBase).join(", ") || "none"}`);
console.log(`DMA remapping: ${r.kernel.iommuActive ? `on (${r.kernel.groupCount} groups, default domain ${r.kernel.defaultDomain})` : "off"}`);
console.log(`interrupt remapping: ${r.kernel.interruptRemapping}`);
for (const p of r.problems) console.log(`${p.severity}: ${p.code}: ${p.message}`);
console.log(`verdict: ${r.ready ? "ready for device assignment" : "not ready"}`);
process.exitCode = statusExitCode(r);
