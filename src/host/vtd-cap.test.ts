import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decodeAmdCap, decodeAmdEfr, decodeVtdCap, decodeVtdEcap, parseAmdFeatures, parseRegister } from "./vtd-cap.js";

const f = (fields: { name: string; value: number }[], name: string) => fields.find((x) => x.name === name)?.value;

describe("VT-d CAP", () => {
  it("decodes a client-platform CAP (0xd2008c40660462)", () => {
    const d = decodeVtdCap(0xd2008c40660462n);
    assert.equal(f(d.fields, "ND"), 2);
    assert.equal(f(d.fields, "SAGAW"), 0b00100);
    assert.deepEqual(d.summary.addressWidths, [48]);
    assert.equal(d.summary.mgaw, 39);
    assert.equal(f(d.fields, "NFR"), 0);
    assert.equal(f(d.fields, "FRO"), 0x40, "fault registers at 0x400");
    assert.equal(f(d.fields, "PSI"), 1);
    assert.deepEqual(d.summary.largePages, ["2M", "1G"]);
    assert.equal(d.summary.cachingMode, false);
    assert.equal(d.summary.postedInterrupts, false);
    assert.match(d.fields.find((x) => x.name === "ND")?.meaning ?? "", /256/);
  });

  it("sees caching mode on a virtual IOMMU", () => {
    assert.equal(decodeVtdCap(1n << 7n).summary.cachingMode, true);
  });
});

describe("VT-d ECAP", () => {
  it("decodes IR, EIM, PT, QI, SC from 0xf050da", () => {
    const s = decodeVtdEcap(0xf050dan).summary;
    assert.equal(s.queuedInvalidation, true);
    assert.equal(s.interruptRemapping, true);
    assert.equal(s.x2apic, true);
    assert.equal(s.passThrough, true);
    assert.equal(s.snoopControl, true);
    assert.equal(s.deviceTlb, false);
    assert.equal(s.scalableMode, false);
    assert.equal(f(decodeVtdEcap(0xf050dan).fields, "IRO"), 0x50);
  });
  it("reads scalable mode and PASID from the high half", () => {
    const s = decodeVtdEcap((1n << 43n) | (1n << 40n)).summary;
    assert.equal(s.scalableMode, true);
    assert.equal(s.pasid, true);
    assert.equal(s.interruptRemapping, false);
  });
});

describe("AMD cap and EFR", () => {
  it("decodes the capability header", () => {
    const d = decodeAmdCap(0x19000fn | (1n << 27n));
    assert.equal(f(d.fields, "CapID"), 0x0f);
    assert.equal(f(d.fields, "CapType"), 1);
    assert.equal(d.summary.efrSupported, true);
  });
  it("decodes EFR bits", () => {
    const s = decodeAmdEfr(0x58f77ef22294a5an).summary;
    assert.equal(s.x2apic, false);
    assert.equal(s.ppr, true);
    assert.equal(s.guestTranslation, true);
    assert.equal(s.guestVirtualApic, false);
    assert.equal(decodeAmdEfr((1n << 2n) | (1n << 7n)).summary.x2apic, true);
  });
  it("parses both sysfs formats of features", () => {
    assert.deepEqual(parseAmdFeatures("58f77ef22294a5a\n"), { efr: 0x58f77ef22294a5an, efr2: null });
    assert.deepEqual(parseAmdFeatures("1:246577efa2254afa\n"), { efr: 0x246577efa2254afan, efr2: 1n });
    assert.equal(parseAmdFeatures("zz"), null);
  });
  it("rejects non-hex and over-wide registers", () => {
    assert.equal(parseRegister("nope"), null);
    assert.equal(parseRegister("1" + "0".repeat(16)), null);
    assert.equal(parseRegister(null), null);
  });
});
