import { test } from "node:test";
import assert from "node:assert/strict";
import { fieldOf } from "../spec/vtd/fields.js";
import { GSTS_TES, RTADDR, TTM_SCALABLE } from "../spec/vtd/registers.js";
import { simBoot } from "./commands/sim.js";

test("sim boot on q35-sm reports the table mode from RTADDR, GSTS, and each device's RID_PASID entry type", () => {
  const r = simBoot("q35-sm", "iommu=pt");
  const u = r.units[0]!;
  assert.equal(u.tableMode, "scalable");
  const rt = BigInt(u.rtaddr!);
  assert.equal(fieldOf(Number(rt & 0xffffffffn), Number(rt >> 32n), RTADDR.TTM), TTM_SCALABLE);
  assert.notEqual(Number(BigInt(u.gsts!)) & GSTS_TES, 0, "translation enabled");
  const types = new Set(r.groups.flatMap((g) => Object.values(g.pasidEntries ?? {})));
  assert.deepEqual([...types], ["pass-through"]);
  assert.equal(r.groups.every((g) => g.pasidEntries !== undefined && Object.keys(g.pasidEntries).length === g.devices.length), true);
  const legacy = simBoot("q35-sm", "intel_iommu=sm_off");
  assert.equal(legacy.units[0]!.tableMode, "legacy");
  assert.equal(legacy.groups.some((g) => g.pasidEntries !== undefined), false);
  assert.equal(simBoot("q35", "").units[0]!.tableMode, "legacy");
});
