/**
 * The AMD GPU reset bug: Polaris, Vega and Navi 1x GPUs (and a few others) do not come back from the resets the
 * kernel knows (bus reset, PM reset; they have no FLR), so a VM can start once and then fails or hangs on the
 * next start until the host reboots. The out-of-tree module vendor-reset (https://github.com/gnif/vendor-reset)
 * performs the vendor-specific reset for the devices listed below (device ids from its device table,
 * src/device-db.h). It must be loaded before the device is first reset, and since Linux 5.15 the kernel uses a
 * device-specific reset only when told: `echo device_specific > /sys/bus/pci/devices/BDF/reset_method`
 * (vendor-reset's udev rule does that).
 */
export const AMD_VENDOR = 0x1002;
export const VENDOR_RESET_MODULE = "vendor_reset";

const FAMILIES: Array<{ family: string; products: string; ids: number[] }> = [
  {
    family: "Polaris 10",
    products: "RX 470/480/570/580/590",
    ids: [0x67c0, 0x67c1, 0x67c2, 0x67c4, 0x67c7, 0x67d0, 0x67df, 0x67c8, 0x67c9, 0x67ca, 0x67cc, 0x67cf, 0x6fdf],
  },
  { family: "Polaris 11", products: "RX 460/560", ids: [0x67e0, 0x67e3, 0x67e8, 0x67eb, 0x67ef, 0x67ff, 0x67e1, 0x67e7, 0x67e9] },
  { family: "Polaris 12", products: "RX 540/550", ids: [0x6980, 0x6981, 0x6985, 0x6986, 0x6987, 0x6995, 0x6997, 0x699f] },
  {
    family: "Vega 10",
    products: "Vega 56/64/Frontier Edition",
    ids: [0x6860, 0x6861, 0x6862, 0x6863, 0x6864, 0x6867, 0x6868, 0x6869, 0x686a, 0x686b, 0x686c, 0x686d, 0x686e, 0x686f, 0x687f],
  },
  { family: "Vega 20", products: "Radeon VII, Instinct MI50/MI60", ids: [0x66a0, 0x66a1, 0x66a2, 0x66a3, 0x66a4, 0x66a7, 0x66af, 0x164c] },
  { family: "Arcturus", products: "Instinct MI100", ids: [0x738c] },
  {
    family: "Navi 10",
    products: "RX 5600 XT/5700/5700 XT",
    ids: [0x7310, 0x7312, 0x7318, 0x7319, 0x731a, 0x731b, 0x731e, 0x731f, 0x15bf, 0x15dd, 0x15de, 0x15e7, 0x1636, 0x1638],
  },
  { family: "Navi 12", products: "Radeon Pro 5600M", ids: [0x7360, 0x7362] },
  { family: "Navi 14", products: "RX 5300/5500 XT, Radeon Pro 5300", ids: [0x7340, 0x7341, 0x7347, 0x734f] },
  { family: "Navi 23", products: "RX 6600/6600 XT/6600M", ids: [0x73ff] },
];

/** The reset-bug family of an AMD device id, or null when the device is not known to need vendor-reset. */
export function amdResetBugFamily(vendorId: number, deviceId: number): { family: string; products: string } | null {
  if (vendorId !== AMD_VENDOR) return null;
  const f = FAMILIES.find((x) => x.ids.includes(deviceId));
  return f === undefined ? null : { family: f.family, products: f.products };
}
