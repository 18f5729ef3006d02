/** Every top-level command. */
import type { Command } from "../command.js";
import { acpiCommand } from "./acpi.js";
import { benchCommand } from "./bench.js";
import { bindCommand, unbindCommand } from "./bind.js";
import { bootargsCommand } from "./bootargs.js";
import { checkCommand } from "./check.js";
import { groupsCommand } from "./groups.js";
import { libvirtXmlCommand } from "./libvirt-xml.js";
import { scenarioCommand } from "./scenario.js";
import { simCommand } from "./sim.js";
import { snapshotCommand } from "./snapshot.js";
import { statusCommand } from "./status.js";
import { tourCommand } from "./tour.js";
import { uiCommand } from "./ui.js";
import { walkCommand } from "./walk.js";

/** `iommu --help` lists the commands in these sections, in this order. */
export const commandSections: { title: string; commands: Command[] }[] = [
  {
    title: "A Linux host and PCI pass-through",
    commands: [statusCommand, groupsCommand, checkCommand, bootargsCommand, bindCommand, unbindCommand, libvirtXmlCommand, snapshotCommand],
  },
  { title: "Firmware tables and memory forensics", commands: [acpiCommand, walkCommand] },
  { title: "The simulated machine", commands: [tourCommand, simCommand, scenarioCommand, uiCommand] },
  { title: "Performance", commands: [benchCommand] },
];

export const commands: Command[] = commandSections.flatMap((s) => s.commands);
