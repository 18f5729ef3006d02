/**
 * A DMA test engine: a PCI function that reads, writes and signals MSIs on command, through the platform (and
 * so through the remapping unit that covers it). Every command and its outcome is kept in `log`.
 */
import { formatBdf, requesterId, type PciAddress } from "../../core/pci.js";
import type { PciDevice } from "../pci/bus.js";
import type { DmaOutcome, Platform } from "../platform.js";
import type { TranslateResult } from "../vtd/unit.js";

export type DmaCommand =
  | { op: "read"; addr: number | bigint; length: number }
  | { op: "write"; addr: number | bigint; data: Uint8Array }
  | { op: "msi"; addr: number | bigint; data: number };

export type DmaCommandResult =
  | { op: "read" | "write"; outcome: DmaOutcome }
  | { op: "msi"; result: TranslateResult };

export class DmaTestDevice implements PciDevice {
  readonly name: string;
  readonly address: PciAddress;
  /** Commands run, oldest first, with what happened. */
  readonly log: { command: DmaCommand; result: DmaCommandResult }[] = [];
  private readonly platform: Platform;

  /** Creates the device and plugs it into the platform's PCI bus. */
  constructor(platform: Platform, address: PciAddress, name = "dma-test") {
    this.platform = platform;
    this.address = address;
    this.name = name;
    platform.addDevice(this);
  }

  /** The requester id its transactions carry. */
  get sid(): number {
    return requesterId(this.address);
  }

  run(command: DmaCommand): DmaCommandResult {
    let result: DmaCommandResult;
    switch (command.op) {
      case "read":
        result = { op: "read", outcome: this.platform.dmaRead(this.sid, command.addr, command.length) };
        break;
      case "write":
        result = { op: "write", outcome: this.platform.dmaWrite(this.sid, command.addr, command.data) };
        break;
      case "msi":
        result = { op: "msi", result: this.platform.msi(this.sid, command.addr, command.data) };
        break;
    }
    this.log.push({ command, result });
    if (this.log.length > 10_000) this.log.shift();
    return result;
  }

  read(addr: number | bigint, length: number): DmaOutcome {
    const r = this.run({ op: "read", addr, length });
    return r.op === "msi" ? { ok: false, result: r.result } : r.outcome;
  }

  write(addr: number | bigint, data: Uint8Array | readonly number[]): DmaOutcome {
    const r = this.run({ op: "write", addr, data: data instanceof Uint8Array ? data : Uint8Array.from(data) });
    return r.op === "msi" ? { ok: false, result: r.result } : r.outcome;
  }

  /** Signals an MSI: a DWORD write of `data` to `addr` (0xFEEx_xxxx). */
  msi(addr: number | bigint, data: number): TranslateResult {
    const r = this.run({ op: "msi", addr, data });
    return r.op === "msi" ? r.result : r.outcome.ok ? { ok: false, kind: "unsupported", detail: "not an MSI" } : r.outcome.result;
  }

  toString(): string {
    return `${this.name} ${formatBdf(this.address)}`;
  }
}
