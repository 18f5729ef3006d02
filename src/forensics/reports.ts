/** The shapes of VT-d forensic walks: options and reports (plain JSON-able objects, addresses as "0x…"). */
import type { WalkCaps } from "../hw/vtd/walk.js";
import type { ScalableCaps } from "../hw/vtd/scalable.js";
import type { LevelReport } from "./steps.js";

export type WalkReport =
  | {
      result: "ok";
      bdf: string;
      iova: string;
      hpa: string;
      pageSize: number;
      read: boolean;
      write: boolean;
      translationType: string;
      /** The domain id of the context or PASID entry (absent for a bare first-stage table walk). */
      domainId?: number;
      /** Scalable mode: the PASID whose entry translated (the request's, or the context entry's RID_PASID). */
      pasid?: number;
      levels: LevelReport[];
    }
  | {
      result: "fault";
      bdf: string;
      iova: string;
      reason: number;
      reasonName: string;
      description: string;
      pasid?: number;
      levels: LevelReport[];
    };

export interface WalkIovaOptions {
  /** Root table address register value (RTADDR_REG). */
  rtaddr: bigint;
  sid: number;
  iova: bigint;
  /** Check the permission of this access; default: report the mapping whatever its R/W bits. */
  access?: "read" | "write";
  caps: WalkCaps;
  /** Scalable mode: the request's PASID (absent: a request without PASID, which uses RID_PASID). */
  pasid?: number;
  /** Scalable mode: the hardware's features (default: every PGTT, PASIDs, 5-level and 1 GiB first stage). */
  scalable?: ScalableCaps;
}

/** A run of mappings contiguous in both iova and hpa, with the same permissions and page size. */
export interface MappingRange {
  iova: string;
  hpa: string;
  /** Bytes. */
  size: string;
  pageSize: number;
  pages: number;
  read: boolean;
  write: boolean;
}

export type ListReport =
  | {
      result: "ok";
      bdf: string;
      domainId: number;
      translationType: string;
      /** Paging levels of the domain's tables (0 for pass-through). */
      pagingLevels: number;
      addressWidth: number;
      mappings: number;
      ranges: MappingRange[];
      /** True when the scan stopped early (tables that point back into themselves, or too many mappings). */
      truncated: boolean;
      entriesRead: number;
    }
  | { result: "fault"; bdf: string; reason: number; reasonName: string; description: string; levels: LevelReport[] };

export interface ListOptions {
  rtaddr: bigint;
  sid: number;
  caps: WalkCaps;
  maxLeaves?: number;
  /** Called with the number of mappings found so far, every PROGRESS_EVERY of them (a long list shows progress). */
  progress?: (mappings: number) => void;
  /** Scalable mode: as for walkIova. */
  pasid?: number;
  scalable?: ScalableCaps;
}
