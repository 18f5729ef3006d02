/**
 * The seam between the doctor and the machine it examines. A SysfsView answers reads of absolute paths as they
 * appear on a running Linux system (/sys/..., /proc/cmdline, /etc/default/grub, /boot/config-*), whether the
 * answers come from the live root, a root prefix (a mounted image or a guest's 9p root), a recorded snapshot,
 * or the simulated kernel. The doctor never touches node:fs directly; it reads through this interface.
 *
 * Conventions: a path that does not exist reads as null; a path that exists but cannot be read throws an
 * IommuError (PERMISSION_DENIED names the path and says to run as root).
 */
export interface SysfsView {
  /** Human description for messages: "live system", "root /mnt/guest", "snapshot host.json", … */
  readonly description: string;
  /** File contents as text, or null when absent. */
  readText(path: string): string | null;
  /** File contents as bytes (ACPI tables), or null when absent. */
  readBytes(path: string): Uint8Array | null;
  /** Target of a symbolic link as stored (often relative, e.g. "../../../kernel/iommu_groups/3"), or null. */
  readLink(path: string): string | null;
  /** Names in a directory, sorted, or null when the directory does not exist. */
  list(path: string): string[] | null;
  /** True when the path exists (file, directory or link). */
  exists(path: string): boolean;
}

/** A view that can also change the system (bind, bootargs --apply). Only live and root-prefix views are writable. */
export interface WritableSysfsView extends SysfsView {
  writeText(path: string, text: string): void;
}
