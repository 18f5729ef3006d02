import { test } from "node:test";
import assert from "node:assert/strict";
import { machinePreset } from "../hw/machine-presets.js";
import { Hypervisor, MiB } from "./hypervisor.js";
import { Monitor } from "./monitor.js";
import { GuestNicDriver, NIC_CTRL, NIC_CTRL_RST, NIC_RDBAH, NIC_RDBAL, NIC_RDH, NicModel } from "./nic.js";

const SMALL = { ...machinePreset("q35")!, name: "q35-1g", ram: { size: "1G" } };

function setup() {
  const hv = Hypervisor.boot({ machine: SMALL });
  const mon = new Monitor(hv);
  const rid = hv.dev("00:02.0").rid;
  const nic = new NicModel(mon.port("00:02.0"), () => (hv.port.configRead(rid, 4, 2) & 4) !== 0);
  hv.setModel("00:02.0", nic);
  const vm = hv.createVm({ name: "vm1", memory: 32 * MiB });
  hv.bindVfio("00:02.0");
  hv.assign(vm, "00:02.0");
  vm.boot();
  return { hv, mon, nic, vm };
}

test("the NIC does nothing before the guest enables bus mastering, and forgets its rings on reset", () => {
  const { hv, nic, vm } = setup();
  assert.equal(nic.receive(new Uint8Array(10)), false, "no rings, no bus mastering");
  const drv = new GuestNicDriver(vm, "00:03.0");
  assert.equal(nic.receive(new Uint8Array([1, 2, 3])), true);
  assert.deepEqual([...drv.poll()[0]!.data], [1, 2, 3]);
  const bar0 = vm.devices[0]!.guestBar0;
  vm.port.mmioWrite(bar0 + NIC_CTRL, 4, NIC_CTRL_RST);
  assert.equal(vm.port.mmioRead32(bar0 + NIC_RDBAL), 0);
  assert.equal(nic.receive(new Uint8Array(10)), false);
  assert.equal(nic.stats.dropped, 2);
  // A function reset by the hypervisor (on teardown) clears them as well.
  const d2 = new GuestNicDriver(vm, "00:03.0");
  assert.ok(d2.rxRing > 0);
  hv.destroyVm(vm);
  assert.equal(nic.mmioRead(NIC_RDBAL), 0);
});

test("hostile ring addresses from the guest end as recorded faults, never as exceptions", () => {
  const { hv, mon, nic, vm } = setup();
  new GuestNicDriver(vm, "00:03.0");
  const bar0 = vm.devices[0]!.guestBar0;
  vm.port.mmioWrite(bar0 + NIC_RDBAH, 4, 0xffffffff);
  vm.port.mmioWrite(bar0 + NIC_RDBAL, 4, 0xfffff000);
  vm.port.mmioWrite(bar0 + NIC_RDH, 4, 0);
  assert.equal(nic.receive(new Uint8Array(8)), false);
  assert.equal(nic.stats.dmaErrors, 1);
  const q = mon.requests[mon.requests.length - 1]!;
  assert.equal(q.addr, "0xfffffffffffff000");
  assert.equal(q.outcome, "blocked");
  assert.equal(q.fault?.name, "ADDR_BEYOND_MGAW");
  assert.equal(hv.host.driver.faults[hv.host.driver.faults.length - 1]?.reason, 0x4);
});
