/**
 * The vocabulary of requests to a VT-d unit and of its answers: a DMA request (requester id, address, length,
 * direction, PCIe address type), the segments it translates to or the fault it ends in, and interrupt requests
 * with the message they become (remapped, passed through, or posted).
 */
import type { InterruptMessage } from "../interrupt-message.js";
import type { RemapResult } from "./intremap.js";
import { AT_TRANSLATED, AT_TRANSLATION_REQUEST, AT_UNTRANSLATED } from "../../spec/vtd/faults.js";

export type AddressType = "untranslated" | "translation-request" | "translated";

export interface DmaRequest {
  /** Requester id: bus << 8 | device << 3 | function. */
  sid: number;
  addr: number | bigint;
  /** Bytes; default 1 for DMA, 4 for an interrupt request. */
  length?: number;
  write: boolean;
  /** For a DWORD write to 0xFEEx_xxxx: the data written (the MSI data). */
  data?: number;
  /** PCIe address type; default untranslated. */
  at?: AddressType;
  /** PASID of a request with a PASID (PCIe PASID TLP prefix), 0..2^20-1; absent: a request without PASID. */
  pasid?: number;
  /** Privileged-mode-requested (supervisor request; meaningful with a PASID in scalable mode). */
  privileged?: boolean;
}

/** What a request carries besides its address: a PASID TLP prefix and its privileged-mode bit. */
export interface RequestAttributes {
  pasid?: number;
  privileged?: boolean;
}

/** One contiguous piece of a translated request. */
export interface DmaSegment {
  iova: bigint;
  hpa: bigint;
  length: number;
  /** Size of the page that mapped it (4096, 2 MiB, 1 GiB). */
  pageSize: number;
  read: boolean;
  write: boolean;
}

export type TranslateResult =
  | { ok: true; kind: "dma"; segments: DmaSegment[] }
  | {
      ok: false;
      kind: "dma";
      reason: number;
      reasonName: string;
      /** Address of the page that faulted. */
      faultAddr: bigint;
      /** False when FPD, an overflow or collapsing kept the fault out of the fault recording registers. */
      recorded: boolean;
      /** Pages translated before the fault. */
      segments: DmaSegment[];
    }
  | {
      ok: true;
      kind: "interrupt";
      remap: RemapResult & { ok: true };
      /** For a posted request: the notification event, sent to the sink only when remap.posted.notified. */
      message: InterruptMessage;
    }
  | { ok: false; kind: "interrupt"; reason: number; reasonName: string; index: number }
  | { ok: false; kind: "unsupported"; detail: string };

/** The PCIe AT value of an address type (FRCD.AT records it). */
export function atOf(at: AddressType | undefined): number {
  return at === "translation-request" ? AT_TRANSLATION_REQUEST : at === "translated" ? AT_TRANSLATED : AT_UNTRANSLATED;
}

/** The notification event of a posted interrupt (VT-d spec 5.2.3), as the unit hands it to the interrupt sink. */
export interface PostedNotification extends InterruptMessage {
  readonly posted: {
    /** Posted-interrupt descriptor address. */
    readonly descriptor: bigint;
    /** The vector that was posted into its PIR. */
    readonly vector: number;
    /** IRTE index. */
    readonly index: number;
  };
}

/** True for a message that is a posting notification event. */
export function isPostedNotification(m: InterruptMessage): m is PostedNotification {
  return "posted" in m && typeof (m as { posted?: unknown }).posted === "object";
}
