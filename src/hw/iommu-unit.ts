/**
 * What the platform needs from an IOMMU, whatever its kind: a name, a register window it routes MMIO to, and
 * the translation of a device request into the platform's result shape (DMA segments, a fault, or an interrupt
 * message). VtdUnit implements it directly; AMD-Vi units through AmdViPlatformUnit (hw/amdvi/platform-unit.ts).
 */
import type { DmaRequest, TranslateResult } from "./vtd/request.js";

export type IommuKind = "vtd" | "amd-vi";

export interface PlatformUnit {
  readonly kind: IommuKind;
  readonly name: string;
  /** Bytes of the register window. */
  readonly mmioSize: number;
  /** A CPU read of 4 (a number) or 8 bytes (a bigint) at `offset` in the window. */
  mmioRead(offset: number, size: 4 | 8): number | bigint;
  mmioWrite(offset: number, size: 4 | 8, value: number | bigint): void;
  /** A device request from requester id `req.sid`: DMA pages translated or faulted, or an interrupt message. */
  translate(req: DmaRequest): TranslateResult;
}
