/**
 * The translation caches of a remapping unit (VT-d spec 6.2): the context cache (6.2.1, source id -> context),
 * the IOTLB (6.2.3, domain id + page -> page frame and permissions, tagged by page size) and the optional
 * paging-structure cache (6.2.4, domain id + address slice -> next table). Entries stay exactly as filled until
 * an invalidation (6.5) or a replacement removes them: a changed table in memory is not seen until then.
 *
 * With caching mode (CAP.CM, 6.1) the unit also caches "negative" entries: a not-present or malformed context
 * entry (tagged with domain id 0, which caching mode reserves for them) and not-present or malformed leaf
 * entries, so software must invalidate after making something present, exactly as the spec requires.
 */
import type { CacheGeometry } from "./config.js";
import { mixHash as mixHashImported, SetAssocStore, type CacheStats } from "./cache.js";
import { TWO32 } from "../../core/u64.js";
import { levelShift, PAGE_SHIFT_4K, SL_R, SL_W } from "../../spec/vtd/paging.js";
import { sidCompareMask } from "../../spec/vtd/registers.js";

// A module-local binding: the lookup paths call it on every request (see unit.ts on imported bindings).
const mixHash = mixHashImported;

/** The low 32 bits of (iovaHi:iovaLo) >> shift, for shift 0..63. */
export function vpnLo(lo: number, hi: number, shift: number): number {
  if (shift === 0) return lo >>> 0;
  if (shift < 32) return ((lo >>> shift) | (hi << (32 - shift))) >>> 0;
  return shift < 64 ? hi >>> (shift - 32) : 0;
}

/** The high 32 bits of (iovaHi:iovaLo) >> shift. */
export function vpnHi(hi: number, shift: number): number {
  return shift < 32 ? hi >>> shift : 0;
}

/** Page-size shift of a leaf at `level` (1 = 4 KiB, 2 = 2 MiB, 3 = 1 GiB). */
const shiftOf = levelShift;
/** 4 KiB page numbers key the lookup accelerator (a module-local copy: it is read on every lookup). */
const PAGE_SHIFT = PAGE_SHIFT_4K;

/**
 * The caches' own tag layout (not a VT-d format): tag0 holds the low 32 bits of the page number at the entry's
 * page size; tag1 packs the domain id (bits 31:16), the level (15:13) and the page number's high bits (12:0).
 */
const TAG_DID_SHIFT = 16;
const TAG_LEVEL_SHIFT = 13;
const TAG_VPN_HI_MASK = 0x1fff;
/** Set-index hash inputs: the level is mixed in above the domain id; context entries use a fixed salt. */
const HASH_LEVEL_SHIFT = 20;
const CONTEXT_HASH_SALT = 0x5a5a;
/** Multiplier spreading domain ids over the lookup accelerator. */
const FRONT_DID_MIX = 0x2f;

function tag1(did: number, level: number, vpnHiBits: number): number {
  return ((did << TAG_DID_SHIFT) | (level << TAG_LEVEL_SHIFT) | (vpnHiBits & TAG_VPN_HI_MASK)) >>> 0;
}

/** The cached permissions: SL_R and SL_W, as in second-level entries. */
function permOf(read: boolean, write: boolean): number {
  return (read ? SL_R : 0) | (write ? SL_W : 0);
}

/** Negative IOTLB entry for a not-present leaf: the fault depends on the access (0x5 write / 0x6 read). */
export const NEG_NOT_PRESENT = 0xff;

/** The IOTLB's lookup accelerator (direct-mapped, by 4 KiB page) has as many entries as the IOTLB, within these bounds. */
const FRONT_MIN = 256;
const FRONT_MAX = 65536;

/**
 * What the IOTLB and the paging-structure cache share: a set-associative store of entries tagged by domain id
 * and by the address range of a table level, and the invalidations that select entries by domain or range.
 */
abstract class DomainRangeCache {
  readonly store: SetAssocStore;
  readonly level: Uint8Array;
  readonly did: Uint16Array;

  constructor(g: CacheGeometry) {
    this.store = new SetAssocStore(g);
    this.level = new Uint8Array(this.store.capacity);
    this.did = new Uint16Array(this.store.capacity);
  }

  invalidateAll(): number {
    return this.store.invalidateAll();
  }

  invalidateDomain(did: number): number {
    return this.store.invalidateWhere((s) => this.did[s] === did);
  }

  /**
   * Page-selective invalidation (6.5.1.2 / 6.5.2.3): the 2^am 4 KiB pages from addr (aligned down to that
   * size) of domain `did`; any cached entry whose range overlaps them goes.
   */
  invalidatePages(did: number, addrLo: number, addrHi: number, am: number): number {
    const first = pageRangeStart(addrLo, addrHi, am);
    const last = first + 2 ** am - 1;
    const st = this.store;
    return st.invalidateWhere((s) => {
      if (this.did[s] !== did) return false;
      const span = 2 ** (shiftOf(this.level[s] ?? 1) - PAGE_SHIFT_4K);
      const start = (st.tagOf0(s) + (st.tagOf1(s) & TAG_VPN_HI_MASK) * TWO32) * span;
      return start <= last && start + span - 1 >= first;
    });
  }

  reset(): void {
    this.store.reset();
  }

  stats(): CacheStats {
    return this.store.stats();
  }
}

export class Iotlb extends DomainRangeCache {
  // Lookup accelerator: remembers which slot answered a (domain, 4 KiB page) lookup, valid while the store's
  // epoch is unchanged (no eviction or invalidation since). It holds no translations of its own, so the IOTLB
  // stays exactly as stale or fresh as the set-associative store says; it only saves the set scan.
  private readonly frontMask: number;
  private readonly frontVpn: Uint32Array;
  private readonly frontKey: Uint32Array;
  private readonly frontSlot: Int32Array;
  private readonly frontEpoch: Float64Array;
  readonly frameLo: Uint32Array;
  readonly frameHi: Uint32Array;
  /** SL_R, SL_W. */
  readonly perm: Uint8Array;
  /** 0 = a translation; otherwise a cached fault (caching mode): a reason, or NEG_NOT_PRESENT. */
  readonly neg: Uint8Array;
  /** Probe levels, smallest page first (3 = up to 1 GiB pages). */
  private readonly maxLevel: number;
  /**
   * Bit L set: an entry of level L > 1 (a large page) may be cached. Lookups skip the page sizes never filled
   * since the last global invalidation, which cannot hit; the answer is the same, with fewer set scans.
   */
  private largeLevels = 0;

  constructor(g: CacheGeometry, maxLevel: number) {
    super(g);
    const n = this.store.capacity;
    // The smallest power of two >= n, within the bounds.
    const front = Math.min(FRONT_MAX, Math.max(FRONT_MIN, 2 ** Math.ceil(Math.log2(Math.max(1, n)))));
    this.frontMask = front - 1;
    this.frontVpn = new Uint32Array(front);
    this.frontKey = new Uint32Array(front);
    this.frontSlot = new Int32Array(front);
    this.frontEpoch = new Float64Array(front);
    this.frameLo = new Uint32Array(n);
    this.frameHi = new Uint32Array(n);
    this.perm = new Uint8Array(n);
    this.neg = new Uint8Array(n);
    this.maxLevel = maxLevel;
  }

  /** Entries of the lookup accelerator in front of the set-associative store (direct-mapped, by 4 KiB page). */
  get acceleratorEntries(): number {
    return this.frontMask + 1;
  }

  /** Slot caching the page of (did, iova) at any page size, or -1. Counts a hit or a miss. */
  lookup(did: number, lo: number, hi: number): number {
    const st = this.store;
    for (let lv = 1; lv <= this.maxLevel; lv++) {
      if (lv > 1 && (this.largeLevels & (1 << lv)) === 0) continue;
      const s = shiftOf(lv);
      const t0 = vpnLo(lo, hi, s);
      const t1 = tag1(did, lv, vpnHi(hi, s));
      const slot = st.find(st.setOf(mixHash(t0, did)), t0, t1);
      if (slot >= 0) {
        st.hits++;
        st.touch(slot);
        return slot;
      }
    }
    st.misses++;
    return -1;
  }

  /** The slot the accelerator holds for (did, the 4 KiB page of iova), or -1. Counts and touches nothing. */
  peekFront(did: number, lo: number, hi: number): number {
    const vpn = ((lo >>> PAGE_SHIFT) | (hi << (32 - PAGE_SHIFT))) >>> 0;
    const key = ((did << TAG_DID_SHIFT) | ((hi >>> PAGE_SHIFT) & TAG_VPN_HI_MASK)) >>> 0;
    const k = (vpn ^ Math.imul(did, FRONT_DID_MIX)) & this.frontMask;
    if (this.frontEpoch[k] === this.store.epoch && this.frontVpn[k] === vpn && this.frontKey[k] === key) return this.frontSlot[k] ?? -1;
    return -1;
  }

  /** As `lookup`, answered from the accelerator when it can: the hit path of a translation. */
  lookupFast(did: number, lo: number, hi: number): number {
    const vpn = ((lo >>> PAGE_SHIFT) | (hi << (32 - PAGE_SHIFT))) >>> 0;
    const key = ((did << TAG_DID_SHIFT) | ((hi >>> PAGE_SHIFT) & TAG_VPN_HI_MASK)) >>> 0;
    const k = (vpn ^ Math.imul(did, FRONT_DID_MIX)) & this.frontMask;
    const st = this.store;
    if (this.frontEpoch[k] === st.epoch && this.frontVpn[k] === vpn && this.frontKey[k] === key) {
      const slot = this.frontSlot[k] ?? -1;
      st.hits++;
      st.touch(slot);
      return slot;
    }
    const slot = this.lookup(did, lo, hi);
    if (slot >= 0) {
      this.frontVpn[k] = vpn;
      this.frontKey[k] = key;
      this.frontSlot[k] = slot;
      this.frontEpoch[k] = st.epoch;
    }
    return slot;
  }

  override invalidateAll(): number {
    this.largeLevels = 0;
    return super.invalidateAll();
  }

  override reset(): void {
    this.largeLevels = 0;
    super.reset();
  }

  fill(did: number, lo: number, hi: number, level: number, frameLo: number, frameHi: number, read: boolean, write: boolean, neg = 0): number {
    const st = this.store;
    const s = shiftOf(level);
    const t0 = vpnLo(lo, hi, s);
    const t1 = tag1(did, level, vpnHi(hi, s));
    const slot = st.allocate(st.setOf(mixHash(t0, did)), t0, t1);
    if (level > 1) this.largeLevels |= 1 << level;
    this.frameLo[slot] = frameLo >>> 0;
    this.frameHi[slot] = frameHi >>> 0;
    this.perm[slot] = permOf(read, write);
    this.neg[slot] = neg;
    this.level[slot] = level;
    this.did[slot] = did;
    return slot;
  }
}

/** First 4 KiB page number of a page-selective invalidation: addr >> 12, aligned down to 2^am pages. */
export function pageRangeStart(addrLo: number, addrHi: number, am: number): number {
  const pfn = (addrHi >>> 0) * 2 ** (32 - PAGE_SHIFT_4K) + ((addrLo >>> 0) >>> PAGE_SHIFT_4K);
  const size = 2 ** am;
  return pfn - (pfn % size);
}

export class ContextCache {
  readonly store: SetAssocStore;
  readonly did: Uint16Array;
  readonly tt: Uint8Array;
  readonly fpd: Uint8Array;
  readonly aw: Uint8Array;
  /** min(MGAW + 1, AGAW) - 32: the address-width check of the hit path is `hi >>> widthShift === 0`. */
  readonly widthShift: Uint8Array;
  readonly ptLo: Uint32Array;
  readonly ptHi: Uint32Array;
  /** 0 = a usable context; otherwise the cached fault reason (caching mode only). */
  readonly neg: Uint8Array;
  private lastSid = -1;
  private lastSlot = -1;
  private lastEpoch = 0;

  constructor(g: CacheGeometry) {
    this.store = new SetAssocStore(g);
    const n = this.store.capacity;
    this.did = new Uint16Array(n);
    this.tt = new Uint8Array(n);
    this.fpd = new Uint8Array(n);
    this.aw = new Uint8Array(n);
    this.widthShift = new Uint8Array(n);
    this.ptLo = new Uint32Array(n);
    this.ptHi = new Uint32Array(n);
    this.neg = new Uint8Array(n);
  }

  lookup(sid: number): number {
    const st = this.store;
    // The last source id looked up, while nothing was evicted or invalidated since: no set scan.
    if (sid === this.lastSid && st.epoch === this.lastEpoch) {
      st.hits++;
      st.touch(this.lastSlot);
      return this.lastSlot;
    }
    const slot = st.find(st.setOf(mixHash(sid, CONTEXT_HASH_SALT)), sid, 0);
    if (slot >= 0) {
      this.lastSid = sid;
      this.lastSlot = slot;
      this.lastEpoch = st.epoch;
    }
    if (slot >= 0) {
      st.hits++;
      st.touch(slot);
    } else {
      st.misses++;
    }
    return slot;
  }

  fill(sid: number, did: number, tt: number, fpd: boolean, aw: number, ptLo: number, ptHi: number, neg: number): number {
    const st = this.store;
    const slot = st.allocate(st.setOf(mixHash(sid, CONTEXT_HASH_SALT)), sid, 0);
    this.did[slot] = did;
    this.tt[slot] = tt;
    this.fpd[slot] = fpd ? 1 : 0;
    this.aw[slot] = aw;
    this.widthShift[slot] = 32;
    this.ptLo[slot] = ptLo >>> 0;
    this.ptHi[slot] = ptHi >>> 0;
    this.neg[slot] = neg;
    return slot;
  }

  invalidateAll(): number {
    return this.store.invalidateAll();
  }

  invalidateDomain(did: number): number {
    return this.store.invalidateWhere((s) => this.did[s] === did);
  }

  /**
   * Device-selective invalidation (10.4.7): entries whose source id equals `sid` except in the function bits
   * the function mask FM hides (00 none, 01 bit 2, 10 bits 2:1, 11 bits 2:0).
   */
  invalidateDevice(sid: number, fm: number): number {
    const keep = sidCompareMask(fm);
    const want = sid & keep;
    return this.store.invalidateWhere((s) => (this.store.tagOf0(s) & keep) === want);
  }

  reset(): void {
    this.store.reset();
  }

  stats(): CacheStats {
    return this.store.stats();
  }
}

/**
 * Paging-structure cache (6.2.4): non-leaf second-level entries, so a walk can start below the top. An entry
 * at level L (2..5) covers 2^(12 + 9 * (L - 1)) bytes of one domain and holds the level L-1 table address.
 */
export class PagingStructureCache extends DomainRangeCache {
  readonly nextLo: Uint32Array;
  readonly nextHi: Uint32Array;
  readonly perm: Uint8Array;

  constructor(g: CacheGeometry) {
    super(g);
    const n = this.store.capacity;
    this.nextLo = new Uint32Array(n);
    this.nextHi = new Uint32Array(n);
    this.perm = new Uint8Array(n);
  }

  /** Slot of the lowest cached entry (level 2 up to maxLevel) covering iova, or -1. */
  lookup(did: number, lo: number, hi: number, maxLevel: number): number {
    const st = this.store;
    for (let lv = 2; lv <= maxLevel; lv++) {
      const s = shiftOf(lv);
      const t0 = vpnLo(lo, hi, s);
      const t1 = tag1(did, lv, vpnHi(hi, s));
      const slot = st.find(st.setOf(mixHash(t0, did ^ (lv << HASH_LEVEL_SHIFT))), t0, t1);
      if (slot >= 0) {
        st.hits++;
        st.touch(slot);
        return slot;
      }
    }
    st.misses++;
    return -1;
  }

  fill(did: number, level: number, lo: number, hi: number, nextLo: number, nextHi: number, read: boolean, write: boolean): void {
    const st = this.store;
    const s = shiftOf(level);
    const t0 = vpnLo(lo, hi, s);
    const t1 = tag1(did, level, vpnHi(hi, s));
    const slot = st.allocate(st.setOf(mixHash(t0, did ^ (level << HASH_LEVEL_SHIFT))), t0, t1);
    this.nextLo[slot] = nextLo >>> 0;
    this.nextHi[slot] = nextHi >>> 0;
    this.perm[slot] = permOf(read, write);
    this.level[slot] = level;
    this.did[slot] = did;
  }
}
