/**
 * The Intel VT-d specification as data: register offsets and fields (chapter 10), fault reasons (chapter 7),
 * interrupt remapping table entries and interrupt request formats (5.1, 9.10–9.12). The only place in src/ where a
 * VT-d bit position or register offset is written; the hardware model, the simulated driver, forensics and the
 * host doctor read and write bits through these modules.
 */
export * from "./registers.js";
export * from "./intremap.js";
export * from "./fields.js";
export * from "./paging.js";
