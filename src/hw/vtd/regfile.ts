/**
 * A declarative MMIO register file. Each register is declared once with its offset, size (4 or 8 bytes), reset
 * value, writable mask, write-1-to-clear mask and write-only mask; one generic path serves every read and write.
 * 64-bit registers are stored as two 32-bit halves and can be accessed whole or half by half. A write returns
 * the declaration it hit (or null), so the owner dispatches side effects on the bits that changed.
 *
 * Write of value v to a dword: new = ((old & ~writable) | (v & writable)) & ~(w1c & v)
 * Read of a dword: value & ~writeOnly
 * Accesses that are not 4- or 8-byte, not naturally aligned, or outside the window read 0 and write nothing.
 */

export interface RegisterDecl {
  /** Spec name, e.g. "GCMD_REG". */
  readonly name: string;
  readonly offset: number;
  readonly size: 4 | 8;
  readonly reset: bigint;
  /** Bits software can write. */
  readonly writable: bigint;
  /** Bits software clears by writing 1 (RW1C status bits). */
  readonly w1c: bigint;
  /** Bits that are write-only (they read as 0). */
  readonly writeOnly: bigint;
  /** Side-effect id the owner dispatches on (0 = none). */
  readonly effect: number;
}

/** What one MMIO write did, for side-effect dispatch. Reused between writes: copy what you keep. */
export class WriteInfo {
  decl: RegisterDecl | null = null;
  /** Which halves of the register were written (an 8-byte register written as a whole sets both). */
  wroteLo = false;
  wroteHi = false;
  /** Register value halves before and after (for 4-byte registers only the low half is meaningful). */
  oldLo = 0;
  oldHi = 0;
  newLo = 0;
  newHi = 0;
  /** The raw value halves software wrote (before masks): commands read their operands from these. */
  valueLo = 0;
  valueHi = 0;
}

function lo32(v: bigint): number {
  return Number(v & 0xffffffffn);
}

function hi32(v: bigint): number {
  return Number((v >> 32n) & 0xffffffffn);
}

export class RegisterFile {
  /** Size of the MMIO window in bytes. */
  readonly size: number;
  readonly decls: readonly RegisterDecl[];
  private readonly value: Uint32Array;
  private readonly writable: Uint32Array;
  private readonly w1c: Uint32Array;
  private readonly writeOnly: Uint32Array;
  private readonly resetValue: Uint32Array;
  /** Declaration index covering each dword, -1 where nothing is declared. */
  private readonly declAt: Int32Array;
  private readonly info = new WriteInfo();
  /** Accesses that were ignored (bad size, alignment or offset). */
  ignoredAccesses = 0;

  constructor(size: number, decls: readonly RegisterDecl[]) {
    if (size % 8 !== 0 || size <= 0) throw new RangeError(`register window size ${size} is not a positive multiple of 8`);
    this.size = size;
    this.decls = decls;
    const n = size >>> 2;
    this.value = new Uint32Array(n);
    this.writable = new Uint32Array(n);
    this.w1c = new Uint32Array(n);
    this.writeOnly = new Uint32Array(n);
    this.resetValue = new Uint32Array(n);
    this.declAt = new Int32Array(n).fill(-1);
    decls.forEach((d, i) => {
      if (d.offset % d.size !== 0 || d.offset + d.size > size) {
        throw new RangeError(`${d.name}: offset 0x${d.offset.toString(16)} is misaligned or outside the window`);
      }
      const w = d.offset >>> 2;
      for (let k = 0; k < d.size >>> 2; k++) {
        if (this.declAt[w + k] !== -1) throw new RangeError(`${d.name} overlaps ${decls[this.declAt[w + k] ?? 0]?.name ?? "?"}`);
        this.declAt[w + k] = i;
      }
      this.resetValue[w] = lo32(d.reset);
      this.writable[w] = lo32(d.writable);
      this.w1c[w] = lo32(d.w1c);
      this.writeOnly[w] = lo32(d.writeOnly);
      if (d.size === 8) {
        this.resetValue[w + 1] = hi32(d.reset);
        this.writable[w + 1] = hi32(d.writable);
        this.w1c[w + 1] = hi32(d.w1c);
        this.writeOnly[w + 1] = hi32(d.writeOnly);
      }
    });
    this.reset();
  }

  /** Every register back to its reset value. */
  reset(): void {
    this.value.set(this.resetValue);
  }

  /** The declaration covering a byte offset, or null. */
  declAtOffset(offset: number): RegisterDecl | null {
    if (!(offset >= 0 && offset < this.size)) return null;
    const i = this.declAt[offset >>> 2] ?? -1;
    return i < 0 ? null : (this.decls[i] ?? null);
  }

  private validAccess(offset: number, size: number): boolean {
    return (size === 4 || size === 8) && Number.isInteger(offset) && offset >= 0 && offset + size <= this.size && offset % size === 0;
  }

  /** Software read of one dword (write-only bits read as 0). */
  read32(offset: number): number {
    if (!this.validAccess(offset, 4)) {
      this.ignoredAccesses++;
      return 0;
    }
    const w = offset >>> 2;
    return ((this.value[w] ?? 0) & ~(this.writeOnly[w] ?? 0)) >>> 0;
  }

  /** Software read of an 8-byte aligned quad, as a bigint. */
  read64(offset: number): bigint {
    if (!this.validAccess(offset, 8)) {
      this.ignoredAccesses++;
      return 0n;
    }
    return (BigInt(this.read32(offset + 4)) << 32n) | BigInt(this.read32(offset));
  }

  /**
   * Software write. `lo` is the value (or its low half for 8-byte writes), `hi` the high half of 8-byte writes.
   * Returns the write description, with `decl` null when nothing declared was touched.
   */
  write(offset: number, size: number, lo: number, hi: number): WriteInfo {
    const info = this.info;
    info.decl = null;
    info.wroteLo = info.wroteHi = false;
    if (!this.validAccess(offset, size)) {
      this.ignoredAccesses++;
      return info;
    }
    const w = offset >>> 2;
    const di = this.declAt[w] ?? -1;
    if (di < 0) return info;
    const decl = this.decls[di] ?? null;
    if (decl === null) return info;
    const base = decl.offset >>> 2;
    info.decl = decl;
    info.oldLo = this.value[base] ?? 0;
    info.oldHi = decl.size === 8 ? (this.value[base + 1] ?? 0) : 0;
    info.valueLo = 0;
    info.valueHi = 0;
    if (size === 8) {
      // An 8-byte access to a pair of 4-byte registers is two writes; only the first is reported.
      this.writeDword(w, lo);
      if (decl.size === 8) this.writeDword(w + 1, hi);
      else if ((this.declAt[w + 1] ?? -1) >= 0) this.writeDword(w + 1, hi);
      info.wroteLo = true;
      info.wroteHi = decl.size === 8;
      info.valueLo = lo >>> 0;
      info.valueHi = decl.size === 8 ? hi >>> 0 : 0;
    } else if (w === base) {
      this.writeDword(w, lo);
      info.wroteLo = true;
      info.valueLo = lo >>> 0;
      info.valueHi = info.oldHi;
    } else {
      this.writeDword(w, lo);
      info.wroteHi = true;
      info.valueHi = lo >>> 0;
      info.valueLo = info.oldLo;
    }
    info.newLo = this.value[base] ?? 0;
    info.newHi = decl.size === 8 ? (this.value[base + 1] ?? 0) : 0;
    return info;
  }

  private writeDword(w: number, v: number): void {
    const old = this.value[w] ?? 0;
    const wm = this.writable[w] ?? 0;
    const c = this.w1c[w] ?? 0;
    this.value[w] = ((old & ~wm) | (v & wm)) & ~(c & v);
  }

  // ---- Hardware-side access (no masks) ----

  get32(offset: number): number {
    return this.value[offset >>> 2] ?? 0;
  }

  set32(offset: number, v: number): void {
    this.value[offset >>> 2] = v >>> 0;
  }

  /** Clears then sets bits of a dword: (v & ~clear) | set (a field is replaced by clearing it and setting it). */
  update32(offset: number, set: number, clear: number): number {
    const w = offset >>> 2;
    const v = (((this.value[w] ?? 0) & ~clear) | set) >>> 0;
    this.value[w] = v;
    return v;
  }

  get64(offset: number): bigint {
    return (BigInt(this.get32(offset + 4)) << 32n) | BigInt(this.get32(offset));
  }

  set64(offset: number, lo: number, hi: number): void {
    this.set32(offset, lo);
    this.set32(offset + 4, hi);
  }

  /** The reset value of a dword (for tests and reset checks). */
  resetValue32(offset: number): number {
    return this.resetValue[offset >>> 2] ?? 0;
  }
}
