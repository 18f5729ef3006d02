/**
 * Host trees for the pass-through failures the doctor detects, each derived from a tree recorded from Debian's
 * 6.1 kernel under QEMU (test/fixtures/hosts/qemu-*) by a short, listed set of changes. The specs below are the
 * documentation: `node --import tsx test/support/failure-trees.ts` rewrites every derived tree (and its NOTES.md,
 * generated from the same spec), and a test checks that the trees on disk are exactly what the specs make.
 */
import { cpSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { FIXTURE_HOSTS } from "./status-trees.js";

export type TreeOp =
  | { op: "write"; path: string; data: string | Uint8Array }
  | { op: "remove"; path: string }
  | { op: "link"; path: string; target: string }
  | { op: "patch"; path: string; offset: number; bytes: number[] }
  | { op: "copy"; path: string; from: string };

export interface FailureTree {
  name: string;
  base: string;
  /** What the tree shows, for NOTES.md. */
  summary: string;
  /** Why each change is what a real host in that situation shows. */
  notes: string[];
  ops: TreeOp[];
}

export const RELEASE = "6.1.0-56-amd64";
const DEV = "sys/devices/pci0000:00";
const le16 = (v: number) => [v & 0xff, (v >> 8) & 0xff];

const write = (path: string, data: string | Uint8Array): TreeOp => ({ op: "write", path, data });
const remove = (path: string): TreeOp => ({ op: "remove", path });
const link = (path: string, target: string): TreeOp => ({ op: "link", path, target });
const patch = (path: string, offset: number, bytes: number[]): TreeOp => ({ op: "patch", path, offset, bytes });

/** A root-bus function of qemu-a turned into another device: ids in sysfs and config space, class, driver. */
function becomes(fn: string, v: { vendor: number; device: number; subVendor: number; subDevice: number; classCode: number; revision: number; driver: string }): TreeOp[] {
  const dir = `${DEV}/0000:00:${fn}`;
  const hex4 = (n: number) => `0x${n.toString(16).padStart(4, "0")}\n`;
  return [
    write(`${dir}/vendor`, hex4(v.vendor)),
    write(`${dir}/device`, hex4(v.device)),
    write(`${dir}/subsystem_vendor`, hex4(v.subVendor)),
    write(`${dir}/subsystem_device`, hex4(v.subDevice)),
    write(`${dir}/class`, `0x${v.classCode.toString(16).padStart(6, "0")}\n`),
    write(`${dir}/revision`, `0x${v.revision.toString(16).padStart(2, "0")}\n`),
    patch(`${dir}/config`, 0x00, [...le16(v.vendor), ...le16(v.device)]),
    patch(`${dir}/config`, 0x08, [v.revision, v.classCode & 0xff, (v.classCode >> 8) & 0xff, (v.classCode >> 16) & 0xff]),
    patch(`${dir}/config`, 0x2c, [...le16(v.subVendor), ...le16(v.subDevice)]),
    ...bindTo(fn, v.driver),
  ];
}

/** Moves a root-bus function of qemu-a from e1000 to another driver (driver link both ways). */
function bindTo(fn: string, driver: string, from = "e1000"): TreeOp[] {
  const addr = `0000:00:${fn}`;
  return [
    remove(`sys/bus/pci/drivers/${from}/${addr}`),
    link(`sys/bus/pci/drivers/${driver}/${addr}`, `../../../../devices/pci0000:00/${addr}`),
    link(`${DEV}/${addr}/driver`, `../../../bus/pci/drivers/${driver}`),
  ];
}

/** A driver that comes from a loaded module: its sysfs directory, module link and /proc/modules line. */
function moduleDriver(driver: string, module: string): TreeOp[] {
  return [
    link(`sys/bus/pci/drivers/${driver}/module`, `../../../../module/${module}`),
    write(`sys/module/${module}/initstate`, "live\n"),
  ];
}

const PROC_MODULES = readFileSync(join(FIXTURE_HOSTS, "qemu-a-intel-pt-ir/proc/modules"), "utf8");
const withModules = (...lines: string[]): TreeOp => write("proc/modules", lines.join("\n") + "\n" + PROC_MODULES);
const osrelease = write("proc/sys/kernel/osrelease", `${RELEASE}\n`);

const POLARIS = { vendor: 0x1002, device: 0x67df, subVendor: 0x1da2, subDevice: 0xe366, classCode: 0x030000, revision: 0xe7, driver: "vfio-pci" };
const POLARIS_AUDIO = { vendor: 0x1002, device: 0xaaf0, subVendor: 0x1da2, subDevice: 0xaaf0, classCode: 0x040300, revision: 0x00, driver: "snd_hda_intel" };
const GA106 = { vendor: 0x10de, device: 0x2504, subVendor: 0x1462, subDevice: 0x397d, classCode: 0x030000, revision: 0xa1, driver: "vfio-pci" };
const GA106_AUDIO = { vendor: 0x10de, device: 0x228e, subVendor: 0x1462, subDevice: 0x397d, classCode: 0x040300, revision: 0xa1, driver: "vfio-pci" };

/** One sysfs resource line: start end flags, as resource_show prints them. */
const res = (start: bigint, end: bigint, flags: number) =>
  `0x${start.toString(16).padStart(16, "0")} 0x${end.toString(16).padStart(16, "0")} 0x${flags.toString(16).padStart(16, "0")}`;
const NO_RES = res(0n, 0n, 0);

const IOMEM_HEAD = [
  "00000000-00000fff : Reserved",
  "00001000-0009fbff : System RAM",
  "000a0000-000bffff : PCI Bus 0000:00",
  "000f0000-000fffff : System ROM",
  "00100000-3ffdffff : System RAM",
  "  1b000000-1c001fff : Kernel code",
  "3ffe0000-3fffffff : Reserved",
];

export const FAILURE_TREES: FailureTree[] = [
  {
    name: "qemu-a-amd-gpu-reset",
    base: "qemu-a-intel-pt-ir",
    summary: "an AMD Polaris 10 GPU (RX 580, 1002:67df) given to vfio-pci while its HDMI audio function (1002:aaf0) in the same slot stays on snd_hda_intel; vendor-reset is not installed",
    notes: [
      "00:06.0 and 00:06.1, recorded as the two functions of one multifunction e1000 slot, become the GPU and its audio function: ids, class and revision in sysfs and in config space, and the driver links (GPU on vfio-pci, audio on snd_hda_intel).",
      "Like the recorded e1000, the GPU has no reset_method (a Polaris has no FLR; on the root bus there is no bus reset).",
      "snd_hda_intel is a loaded module (driver module link, /sys/module/snd_hda_intel/initstate, a /proc/modules line).",
      `/proc/sys/kernel/osrelease names the recorded kernel (${RELEASE}) so the doctor can look for vendor-reset under /lib/modules; there is none.`,
    ],
    ops: [
      ...becomes("06.0", POLARIS),
      ...becomes("06.1", POLARIS_AUDIO),
      ...moduleDriver("snd_hda_intel", "snd_hda_intel"),
      withModules("snd_hda_intel 57344 0 - Live 0xffffffffc09f0000"),
      osrelease,
    ],
  },
  {
    name: "qemu-a-bootfb-in-bar",
    base: "qemu-a-intel-pt-ir",
    summary: "an NVIDIA GA106 GPU (10de:2504) and its audio function on vfio-pci while the boot framebuffer (BOOTFB, sysfb's simple-framebuffer) still holds the start of its BAR 1",
    notes: [
      "00:06.0 and 00:06.1 become the GPU and its HDMI audio function, both bound to vfio-pci, each with reset_method 'flr' (the recorded e1000 functions had none).",
      "/proc/iomem is added as root reads it: the GPU's BAR 1 at 0xe0000000-0xefffffff with BOOTFB (0xe0000000-0xe07e8fff, a 1920x1080x32 framebuffer) inside it.",
      "/sys/bus/pci/devices/0000:00:06.0/resource is added: BAR 0 at 0xfe000000-0xfeffffff, BAR 1 at 0xe0000000-0xefffffff.",
    ],
    ops: [
      ...becomes("06.0", GA106),
      ...becomes("06.1", GA106_AUDIO),
      write(`${DEV}/0000:00:06.0/reset_method`, "flr\n"),
      write(`${DEV}/0000:00:06.1/reset_method`, "flr\n"),
      write(`${DEV}/0000:00:06.0/resource`, [res(0xfe000000n, 0xfeffffffn, 0x40200), res(0xe0000000n, 0xefffffffn, 0x14220c), NO_RES, NO_RES, NO_RES, NO_RES, NO_RES].join("\n") + "\n"),
      write(
        "proc/iomem",
        [
          ...IOMEM_HEAD,
          "40000000-febfffff : PCI Bus 0000:00",
          "  e0000000-efffffff : 0000:00:06.0",
          "    e0000000-e07e8fff : BOOTFB",
          "  fe000000-feffffff : 0000:00:06.0",
          "  fed90000-fed90fff : dmar0",
          "fee00000-fee00fff : Local APIC",
          "",
        ].join("\n"),
      ),
    ],
  },
  {
    name: "qemu-a-early-bind-lost",
    base: "qemu-a-intel-pt-ir",
    summary: "/etc/modprobe.d/vfio.conf asks vfio-pci for 8086:100e, but e1000 claimed all three 8086:100e functions first (no softdep, vfio-pci not in the initramfs)",
    notes: [
      "The recorded devices are unchanged: 00:06.0, 00:06.1 and 02:01.0 are e1000 functions (8086:100e) on the e1000 driver, which comes from a module.",
      "/etc/modprobe.d/vfio.conf holds 'options vfio-pci ids=8086:100e' and nothing else.",
      "Debian's initramfs-tools is installed (/usr/sbin/update-initramfs, /etc/initramfs-tools/initramfs.conf) and /etc/initramfs-tools/modules lists no module.",
    ],
    ops: [
      write("etc/modprobe.d/vfio.conf", "# pass the e1000 NICs through\noptions vfio-pci ids=8086:100e\n"),
      write("etc/initramfs-tools/initramfs.conf", "MODULES=most\nBUSYBOX=auto\nCOMPRESS=zstd\n"),
      write("etc/initramfs-tools/modules", "# List of modules that you want to include in your initramfs.\n# They will be loaded at boot time in the order below.\n"),
      write("usr/sbin/update-initramfs", ""),
    ],
  },
  {
    name: "qemu-a-d3cold",
    base: "qemu-a-intel-pt-ir",
    summary: "the NVMe controller 00:04.0 on vfio-pci, stuck in D3cold: its config space reads all ones",
    notes: [
      "00:04.0 moves from nvme to vfio-pci; its 4096-byte config file reads 0xff throughout (what sysfs returns when the device does not answer).",
      "power_state (Linux 5.19+) reads D3cold and d3cold_allowed reads 1; the sysfs ids stay as enumerated at boot.",
    ],
    ops: [
      remove("sys/bus/pci/drivers/nvme/0000:00:04.0"),
      link("sys/bus/pci/drivers/vfio-pci/0000:00:04.0", "../../../../devices/pci0000:00/0000:00:04.0"),
      link(`${DEV}/0000:00:04.0/driver`, "../../../bus/pci/drivers/vfio-pci"),
      write(`${DEV}/0000:00:04.0/config`, new Uint8Array(4096).fill(0xff)),
      write(`${DEV}/0000:00:04.0/power_state`, "D3cold\n"),
      write(`${DEV}/0000:00:04.0/d3cold_allowed`, "1\n"),
    ],
  },
  {
    name: "qemu-a-secure-boot",
    base: "qemu-a-intel-pt-ir",
    summary: "Secure Boot on, the kernel enforcing module signatures, and an unsigned vendor-reset.ko (DKMS) next to a signed kvmfr.ko",
    notes: [
      "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c holds attributes 0x00000006 and the value 1.",
      "sig_enforce reads Y; /sys/kernel/security/lockdown reads 'none [integrity] confidentiality'.",
      `/lib/modules/${RELEASE}/updates/dkms/ holds vendor-reset.ko without a signature and kvmfr.ko ending in the signature marker; neither is loaded. Their bodies are placeholders (an ELF header), not real modules.`,
      "/var/lib/dkms/mok.pub exists (DKMS's signing key, not yet enrolled).",
    ],
    ops: [
      write("sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c", new Uint8Array([6, 0, 0, 0, 1])),
      write("sys/module/module/parameters/sig_enforce", "Y\n"),
      write("sys/kernel/security/lockdown", "none [integrity] confidentiality\n"),
      write(`lib/modules/${RELEASE}/updates/dkms/vendor-reset.ko`, new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, ...new Array<number>(56).fill(0)])),
      write(`lib/modules/${RELEASE}/updates/dkms/kvmfr.ko`, Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.alloc(56), Buffer.from("~Module signature appended~\n", "latin1")])),
      write("var/lib/dkms/mok.pub", "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"),
      osrelease,
    ],
  },
  {
    name: "qemu-a-memlock",
    base: "qemu-a-intel-pt-ir",
    summary: "the examined process has an 8 MiB locked-memory limit and no CAP_IPC_LOCK on a 1 GiB host",
    notes: [
      "/proc/self/limits is the usual user default on Debian (Max locked memory 8388608 bytes, soft and hard); /proc/self/status shows CapEff 0.",
      "/proc/meminfo's MemTotal matches the guest's -m 1024.",
    ],
    ops: [
      write(
        "proc/self/limits",
        [
          "Limit                     Soft Limit           Hard Limit           Units     ",
          "Max cpu time              unlimited            unlimited            seconds   ",
          "Max open files            1024                 524288               files     ",
          "Max locked memory         8388608              8388608              bytes     ",
          "Max address space         unlimited            unlimited            bytes     ",
          "",
        ].join("\n"),
      ),
      write("proc/self/status", "Name:\tiommu\nUid:\t1000\t1000\t1000\t1000\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"),
      write("proc/meminfo", "MemTotal:        1004852 kB\nMemFree:          612340 kB\n"),
    ],
  },
  {
    name: "qemu-f-iommufd",
    base: "qemu-f-intel-noir-unsafe",
    summary: "no interrupt remapping, vfio_iommu_type1.allow_unsafe_interrupts=1, and iommufd present with its own allow_unsafe_interrupts off",
    notes: [
      "/dev/iommu exists (CONFIG_IOMMUFD) and /sys/module/iommufd/parameters/allow_unsafe_interrupts reads N; everything else is the recorded qemu-f tree.",
    ],
    ops: [write("dev/iommu", ""), write("sys/module/iommufd/parameters/allow_unsafe_interrupts", "N\n"), write("sys/module/iommufd/initstate", "live\n")],
  },
];

function apply(root: string, op: TreeOp): void {
  const p = join(root, op.path);
  if (op.op === "remove") return void rmSync(p, { recursive: true, force: true });
  if (op.op === "copy") return void cpSync(join(root, op.from), p, { recursive: true, verbatimSymlinks: true });
  mkdirSync(dirname(p), { recursive: true });
  if (op.op === "patch") {
    const b = readFileSync(p);
    op.bytes.forEach((v, i) => (b[op.offset + i] = v));
    return void writeFileSync(p, b);
  }
  rmSync(p, { force: true });
  if (op.op === "link") symlinkSync(op.target, p);
  else writeFileSync(p, op.data);
}

export function notesText(t: FailureTree): string {
  return [
    `# ${t.name}`,
    "",
    `Derived from the recorded tree \`${t.base}\` (see ../README.md) by test/support/failure-trees.ts: ${t.summary}.`,
    "The recording's dmesg.txt is left out: it describes the machine before these changes.",
    "",
    "Changes:",
    "",
    ...t.notes.map((n) => `- ${n}`),
    "",
  ].join("\n");
}

/** Writes one derived tree to `dest` (replacing it). */
export function buildFailureTree(t: FailureTree, dest: string): void {
  rmSync(dest, { recursive: true, force: true });
  cpSync(join(FIXTURE_HOSTS, t.base), dest, { recursive: true, verbatimSymlinks: true });
  rmSync(join(dest, "dmesg.txt"), { force: true });
  for (const op of t.ops) apply(dest, op);
  writeFileSync(join(dest, "NOTES.md"), notesText(t));
}

/** Every file and link under a tree: path → contents or "-> target". */
export function treeListing(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const st = lstatSync(p);
      const rel = relative(root, p);
      if (st.isSymbolicLink()) out.set(rel, `-> ${readlinkSync(p)}`);
      else if (st.isDirectory()) walk(p);
      else out.set(rel, readFileSync(p).toString("base64"));
    }
  };
  walk(root);
  return out;
}

if (process.argv[1]?.endsWith("failure-trees.ts")) {
  for (const t of FAILURE_TREES) {
    buildFailureTree(t, join(FIXTURE_HOSTS, t.name));
    process.stdout.write(`wrote ${join(FIXTURE_HOSTS, t.name)}\n`);
  }
}
