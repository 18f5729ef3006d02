/** `iommu libvirt-xml BDF [--group] [--qemu]`: <hostdev> XML (or QEMU -device arguments) for host devices. */
import { JSON_OPTION, flag, toJson, type Command } from "../command.js";
import { resolveTargets } from "../../host/bind-targets.js";
import { hostdevXml, qemuArgs } from "../../host/libvirt-xml.js";
import { VIEW_OPTIONS, VIEW_OPTIONS_HELP, viewFromArgs } from "../../host/views/open.js";
import { hex } from "../../core/hex.js";

export const libvirtXmlCommand: Command = {
  name: "libvirt-xml",
  summary: "print libvirt <hostdev> XML or QEMU -device arguments for a PCI device (or its IOMMU group)",
  help: `Usage: iommu libvirt-xml BDF [--group] [--qemu] [--json]

Prints a libvirt <hostdev mode='subsystem' type='pci' managed='yes'> element for the device, ready to paste
into a domain's <devices> (virsh edit) or to attach with 'virsh attach-device DOMAIN FILE --config'.
managed='yes' makes libvirt bind the device to vfio-pci when the guest starts and give it back afterwards.

Options:
      --group       one element per device of BDF's IOMMU group (bridges stay with the host); a group
                    must be assigned as a whole
      --qemu        print QEMU arguments instead: -device vfio-pci,host=DDDD:BB:DD.F (one per device)
  -j, --json        machine-readable output
${VIEW_OPTIONS_HELP}

Examples:
  iommu libvirt-xml 01:00.0 --group > gpu.xml && virsh attach-device win11 gpu.xml --config
  qemu-system-x86_64 ... $(iommu libvirt-xml 0000:01:00.0 --qemu)
`,
  options: { ...JSON_OPTION, ...VIEW_OPTIONS, group: { type: "boolean" }, qemu: { type: "boolean" } },
  positionals: [1, 1],
  run(args, ctx) {
    const view = viewFromArgs(args);
    const t = resolveTargets(view, args.positionals[0] ?? "", flag(args, "group"));
    const addrs = t.devices.map((d) => d.pci);
    if (flag(args, "json")) {
      ctx.out(
        toJson({
          device: t.device.address,
          group: t.group?.id ?? null,
          devices: t.devices.map((d) => ({
            address: d.address,
            domain: hex(d.pci.segment, 4),
            bus: hex(d.pci.bus, 2),
            slot: hex(d.pci.device, 2),
            function: hex(d.pci.fn, 1),
            driver: d.driver,
          })),
          skipped: t.skipped,
          xml: hostdevXml(addrs),
          qemu: qemuArgs(addrs).flat(),
        }),
      );
      return 0;
    }
    for (const s of t.skipped) ctx.err(`note: ${s.address} left out: ${s.reason}\n`);
    if (flag(args, "qemu")) ctx.out(qemuArgs(addrs).map((a) => a.join(" ") + "\n").join(""));
    else ctx.out(hostdevXml(addrs));
    return 0;
  },
};
