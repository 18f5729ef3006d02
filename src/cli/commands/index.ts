/** Every top-level command, in the order `iommu --help` lists them. */
import type { Command } from "../command.js";
import { acpiCommand } from "./acpi.js";
import { benchCommand } from "./bench.js";
import { bindCommand, unbindCommand } from "./bind.js";
import { bootargsCommand } from "./bootargs.js";
import { checkCommand } from "./check.js";
import { groupsCommand } from "./groups.js";
import { libvirtXmlCommand } from "./libvirt-xml.js";
import { simCommand } from "./sim.js";
import { snapshotCommand } from "./snapshot.js";
import { statusCommand } from "./status.js";
import { tourCommand } from "./tour.js";
import { walkCommand } from "./walk.js";

export const commands: Command[] = [statusCommand, acpiCommand, benchCommand, groupsCommand, checkCommand, bootargsCommand, libvirtXmlCommand, bindCommand, unbindCommand, snapshotCommand, walkCommand, simCommand, tourCommand];
