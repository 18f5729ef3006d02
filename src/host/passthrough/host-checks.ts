/**
 * Host-wide pass-through checks: unsigned out-of-tree modules under Secure Boot, vfio-pci options a built-in
 * vfio-pci never sees, the locked-memory limit, and VFIO's two backends (vfio_iommu_type1 and iommufd) with
 * their separate allow_unsafe_interrupts.
 */
import { problem, type Problem } from "../problem.js";
import { ALLOW_UNSAFE_PATH } from "../status-kernel.js";
import type { PassthroughFacts } from "./facts.js";
import { failed, incomplete, passed, type DeviceCheck } from "./finding.js";
import { atText } from "./modprobe.js";
import { formatBytes } from "./read.js";
import { IOMMUFD_UNSAFE_PATH } from "./vfio-backend.js";

/** How to get a MOK-signed module, from the keys this system has. */
function signingHint(haveDkmsKey: boolean): string {
  return haveDkmsKey
    ? "enroll DKMS's key: sudo mokutil --import /var/lib/dkms/mok.pub, reboot and confirm in MokManager, then rebuild the module (sudo dkms autoinstall) so it is signed"
    : "sign the module with a key enrolled as a Machine Owner Key (sudo mokutil --import KEY.der, reboot, confirm in MokManager; DKMS signs with /var/lib/dkms/mok.key once that key is enrolled)";
}

/** Pass-through modules that are installed, not loaded, and not signed while Secure Boot is on. */
export function secureBootProblems(facts: PassthroughFacts, haveDkmsKey: boolean, loaded: (m: string) => boolean | null): Problem[] {
  const sb = facts.secureBoot;
  if (sb.state !== "enabled" || sb.enforcing === false) return [];
  const out: Problem[] = [];
  for (const f of facts.moduleFiles) {
    if (loaded(f.module) === true) continue;
    const enforce = sb.enforcing === true ? `the kernel enforces module signatures (${sb.sigEnforce === true ? "sig_enforce=Y" : `lockdown=${sb.lockdown ?? "?"}`})` : "the kernel is likely to enforce module signatures";
    if (f.signed === false) {
      out.push(problem("SECURE_BOOT_UNSIGNED_MODULE", "warning",
        `${f.path} is not signed and Secure Boot is on (${sb.detail}): ${enforce}, so 'modprobe ${f.module}' fails with "Key was rejected by service"`,
        signingHint(haveDkmsKey)));
    } else if (f.signed === null) {
      out.push(problem("CHECK_INCOMPLETE", "info",
        `could not tell whether ${f.path} is signed (${f.why ?? "unknown"}); Secure Boot is on and ${enforce}`,
        `check with: modinfo -F signer ${f.path}`));
    }
  }
  return out;
}

/** options for vfio-pci in modprobe.d while vfio-pci is built into the kernel: they never apply. */
export function builtinOptionsProblems(facts: PassthroughFacts): Problem[] {
  if (facts.config?.values.CONFIG_VFIO_PCI !== "y") return [];
  return facts.modprobe.options
    .filter((o) => o.module === "vfio_pci")
    .map((o) => problem("VFIO_PCI_OPTIONS_IGNORED", "warning",
      `${atText(o.at)} sets 'options vfio-pci ${o.options.join(" ")}', but vfio-pci is built into this kernel (CONFIG_VFIO_PCI=y): modprobe.d options never reach it`,
      `put them on the kernel command line instead: ${o.options.map((x) => `vfio-pci.${x}`).join(" ")}`));
}

/**
 * The locked-memory limit of the examined process against the guest RAM VFIO must pin (`guestBytes`), or, when
 * no size is given, against the host's RAM.
 */
export function memlockCheck(facts: PassthroughFacts, guestBytes: number | null): DeviceCheck {
  const m = facts.memlock;
  if (m.soft === undefined) {
    const why = m.limits.error === null ? "/proc/self/limits does not exist here" : `could not read /proc/self/limits (${m.limits.error})`;
    return incomplete("MEMLOCK", `could not check the locked-memory limit VFIO needs: ${why}`, "run on the host itself, as the user who starts the VM");
  }
  if (m.ipcLock === true) {
    return passed("MEMLOCK", "this process has CAP_IPC_LOCK (root): VFIO does not charge pinned guest memory to its RLIMIT_MEMLOCK; run as the user who starts QEMU to check theirs");
  }
  if (m.soft === null) return passed("MEMLOCK", "the locked-memory limit (RLIMIT_MEMLOCK) is unlimited: VFIO can pin all of guest RAM");
  const limit = formatBytes(m.soft);
  const hint = "raise it for the user who starts QEMU: a line '@kvm hard memlock unlimited' (and soft) in /etc/security/limits.d/90-vfio.conf, " +
    "or LimitMEMLOCK=infinity in the service that starts it, or ulimit -l unlimited in its shell; libvirt sets the limit for the VMs it starts by itself";
  const compare = guestBytes ?? m.memTotal;
  if (compare === null) {
    return failed("MEMLOCK", "MEMLOCK_LIMIT_LOW", "warning",
      `the locked-memory limit (RLIMIT_MEMLOCK) is ${limit}: a QEMU started with it can give VFIO devices at most ${limit} of guest RAM (VFIO_MAP_DMA fails with ENOMEM beyond)`, hint);
  }
  const against = guestBytes !== null ? `the guest's ${formatBytes(guestBytes)}` : `this host's ${formatBytes(compare)} of RAM`;
  if (m.soft >= compare) return passed("MEMLOCK", `the locked-memory limit (RLIMIT_MEMLOCK, ${limit}) covers ${against}`);
  return failed("MEMLOCK", "MEMLOCK_LIMIT_LOW", guestBytes !== null ? "error" : "warning",
    `the locked-memory limit (RLIMIT_MEMLOCK) is ${limit}, below ${against}: VFIO pins all guest RAM, so a QEMU started with this limit fails with VFIO_MAP_DMA: ENOMEM for guests over ${limit}`, hint);
}

/** iommufd and vfio_iommu_type1 each have their own allow_unsafe_interrupts. */
export function backendProblems(facts: PassthroughFacts, type1AllowUnsafe: boolean | null, interruptRemapping: string): Problem[] {
  const b = facts.backend;
  const out: Problem[] = [];
  const cmd = facts.cmdline;
  if (b.container === "iommufd" && cmd.allowUnsafeInterrupts !== null) {
    out.push(problem("VFIO_TYPE1_PARAMETER_IGNORED", "warning",
      "the command line sets vfio_iommu_type1.allow_unsafe_interrupts, but this kernel's VFIO container is iommufd (CONFIG_IOMMUFD_VFIO_CONTAINER=y): vfio_iommu_type1 is not there to read it",
      "use iommufd.allow_unsafe_interrupts=1 instead"));
  }
  if (interruptRemapping !== "enabled" && type1AllowUnsafe === true && b.iommufd && b.iommufdAllowUnsafe !== true) {
    out.push(problem("IOMMUFD_REFUSES_UNSAFE_INTERRUPTS", "warning",
      `${ALLOW_UNSAFE_PATH} is Y, but /dev/iommu exists and ${IOMMUFD_UNSAFE_PATH} is ${b.iommufdAllowUnsafe === false ? "N" : "not set (iommufd not loaded)"}: a VMM using iommufd (QEMU -object iommufd) still refuses devices without interrupt remapping`,
      "also set iommufd.allow_unsafe_interrupts=1 (command line), or use the VFIO container (/dev/vfio/vfio)"));
  }
  return out;
}
