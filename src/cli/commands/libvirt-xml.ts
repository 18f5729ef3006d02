/** `iommu libvirt-xml BDF [--group] [--qemu]`: <hostdev> XML (or QEMU -device arguments) for host devices. */
import { join } from "node:path";
import { IommuError } from "../../core/errors.js";
import { atomicWriteFile } from "../../core/fs.js";
import { formatPciAddress } from "../../core/pci.js";
import { JSON_OPTION, flag, str, toJson, type Command } from "../command.js";
import { resolveTargets } from "../../host/bind-targets.js";
import { hostdevXml, qemuArgs } from "../../host/libvirt-xml.js";
import { VIEW_OPTIONS, VIEW_OPTIONS_HELP, viewFromArgs } from "../../host/views/open.js";
import { hex } from "../../core/hex.js";

export const libvirtXmlCommand: Command = {
  name: "libvirt-xml",
  summary: "print libvirt <hostdev> XML or QEMU -device arguments for a PCI device (or its IOMMU group)",
  help: `Usage: iommu libvirt-xml BDF [--group] [--out-dir DIR] [--qemu] [--json]

Prints a libvirt <hostdev mode='subsystem' type='pci' managed='yes'> element for the device, ready to paste
into a domain's <devices> (virsh edit) or to attach with 'virsh attach-device DOMAIN FILE --config'.
managed='yes' makes libvirt bind the device to vfio-pci when the guest starts and give it back afterwards.

A GPU comes with the other functions of its slot (HDMI/DP audio, USB-C controller): the card goes to the
VM as a whole, so they are emitted with it (one <hostdev> each), whatever their IOMMU group.

Options:
      --group       one element per device of BDF's IOMMU group (bridges stay with the host); a group
                    must be assigned as a whole. Several devices need --out-dir (or --qemu, or --json)
      --no-companions  only the named function, not a GPU's other functions
      --out-dir DIR one file per device, DIR/hostdev-DDDD-BB-DD.F.xml: each is a well-formed document, which
                    is what 'virsh attach-device' takes
Warnings (on stderr): the IOMMU is not active, group partners left out, a device bound to a host driver.
      --qemu        print QEMU arguments instead: -device vfio-pci,host=DDDD:BB:DD.F (one per device)
  -j, --json        machine-readable output
${VIEW_OPTIONS_HELP}

Examples:
  iommu libvirt-xml 01:00.0 > gpu.xml && virsh attach-device win11 gpu.xml --config
  iommu libvirt-xml 01:00.0 --group --out-dir gpu/ && for f in gpu/*.xml; do virsh attach-device win11 "$f" --config; done
  qemu-system-x86_64 ... $(iommu libvirt-xml 0000:01:00.0 --qemu)
`,
  options: {
    ...JSON_OPTION,
    ...VIEW_OPTIONS,
    group: { type: "boolean" },
    qemu: { type: "boolean" },
    "out-dir": { type: "string" },
    "no-companions": { type: "boolean" },
  },
  positionals: [1, 1],
  run(args, ctx) {
    const view = viewFromArgs(args);
    const t = resolveTargets(view, args.positionals[0] ?? "", flag(args, "group"), { companions: !flag(args, "no-companions") });
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
          companions: t.companions,
          xml: hostdevXml(addrs),
          qemu: qemuArgs(addrs).flat(),
        }),
      );
      return 0;
    }
    for (const s of t.skipped) ctx.err(`note: ${s.address} left out: ${s.reason}\n`);
    if (t.companions.length > 0) ctx.err(`note: ${t.device.address} is a GPU: its slot's other function${t.companions.length > 1 ? "s" : ""} ${t.companions.join(", ")} go${t.companions.length > 1 ? "" : "es"} to the VM with it (--no-companions leaves ${t.companions.length > 1 ? "them" : "it"} out)\n`);
    // What a user would regret, from the same facts the doctor reads.
    if (t.group === null) ctx.err(`warning: ${t.device.address} is in no IOMMU group: the IOMMU is not active, the guest will not start with it (see 'iommu status')\n`);
    const partners = t.group === null ? [] : t.group.devices.filter((a) => !t.devices.some((d) => d.address === a) && !t.skipped.some((s) => s.address === a));
    if (partners.length > 0) ctx.err(`warning: group ${t.group?.id} also holds ${partners.join(", ")}: a group is assigned as a whole (add --group)\n`);
    for (const d of t.devices) {
      if (d.driver !== null && d.driver !== "vfio-pci") ctx.err(`warning: ${d.address} is in use by the host driver ${d.driver}: with managed='yes' libvirt unbinds it when the guest starts\n`);
    }
    if (flag(args, "qemu")) {
      ctx.out(qemuArgs(addrs).map((a) => a.join(" ") + "\n").join(""));
      return 0;
    }
    const dir = str(args, "out-dir");
    if (dir !== undefined) {
      for (const a of addrs) {
        const file = join(dir, `hostdev-${formatPciAddress(a).replace(/:/g, "-")}.xml`);
        atomicWriteFile(file, hostdevXml([a]), { mkdirs: true });
        ctx.out(`${file}\n`);
      }
      return 0;
    }
    if (addrs.length > 1) {
      const why = t.companions.length > 0 ? ` (${t.device.address} with its slot's ${t.companions.join(", ")})` : "";
      throw new IommuError("SEVERAL_DEVICES", `${addrs.length} devices${why}: one <hostdev> document each, which stdout cannot hold as one file`, {
        hint: "write one file per device with --out-dir DIR (then virsh attach-device each), or use --qemu or --json",
      });
    }
    ctx.out(hostdevXml(addrs));
    return 0;
  },
};
