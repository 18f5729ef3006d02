/**
 * Simulated time and the kernel log. Time is a nanosecond counter the kernel advances explicitly (boot phases,
 * `Kernel.advance`); timers (the flush queue's) fire when it passes their deadline. Nothing reads the wall clock,
 * so every run prints the same log and measures the same windows.
 *
 * Lines are printed the way dmesg shows them: `[    0.004000] DMAR: Host address width 39`.
 */
export const KERN_ERR = 3;
export const KERN_WARNING = 4;
export const KERN_NOTICE = 5;
export const KERN_INFO = 6;

export interface LogLine {
  /** Simulated time in nanoseconds. */
  ns: number;
  level: number;
  text: string;
}

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

export class Clock {
  private nowNs = 0;
  private seq = 0;
  private timers: Timer[] = [];

  get ns(): number {
    return this.nowNs;
  }

  /** Moves time forward to at least `ns` (never backwards), firing due timers in deadline order. */
  advanceTo(ns: number): void {
    for (;;) {
      const next = this.timers[0];
      if (next === undefined || next.at > ns) break;
      this.timers.shift();
      this.nowNs = Math.max(this.nowNs, next.at);
      next.fn();
    }
    this.nowNs = Math.max(this.nowNs, ns);
  }

  advance(deltaNs: number): void {
    this.advanceTo(this.nowNs + deltaNs);
  }

  /** Runs `fn` once time reaches now + `delayNs`. Returns a handle for `cancel`. */
  schedule(delayNs: number, fn: () => void): number {
    const t: Timer = { at: this.nowNs + delayNs, seq: ++this.seq, fn };
    let i = this.timers.length;
    while (i > 0 && (this.timers[i - 1]?.at ?? 0) > t.at) i--;
    this.timers.splice(i, 0, t);
    return t.seq;
  }

  cancel(handle: number): void {
    this.timers = this.timers.filter((t) => t.seq !== handle);
  }

  /** Deadline of the earliest pending timer, or null. */
  nextDeadline(): number | null {
    return this.timers[0]?.at ?? null;
  }
}

export class KernelLog {
  readonly lines: LogLine[] = [];
  constructor(private readonly clock: Clock) {}

  print(level: number, text: string): void {
    this.lines.push({ ns: this.clock.ns, level, text });
  }

  info(text: string): void {
    this.print(KERN_INFO, text);
  }

  notice(text: string): void {
    this.print(KERN_NOTICE, text);
  }

  warn(text: string): void {
    this.print(KERN_WARNING, text);
  }

  err(text: string): void {
    this.print(KERN_ERR, text);
  }

  /** The log as dmesg prints it. */
  text(): string {
    return this.lines.map(formatLine).join("\n") + (this.lines.length > 0 ? "\n" : "");
  }

  /** Lines (without timestamps) that contain `needle`. */
  grep(needle: string | RegExp): string[] {
    return this.lines.map((l) => l.text).filter((t) => (typeof needle === "string" ? t.includes(needle) : needle.test(t)));
  }
}

/** `[    1.960515] text`: seconds padded to 5 digits, microseconds to 6. */
export function formatLine(l: LogLine): string {
  const us = Math.floor(l.ns / 1000);
  const s = Math.floor(us / 1e6);
  return `[${String(s).padStart(5, " ")}.${String(us % 1e6).padStart(6, "0")}] ${l.text}`;
}
