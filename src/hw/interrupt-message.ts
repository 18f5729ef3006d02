/** The message an interrupt controller receives: what every interrupt source of the machine hands on. */
import type { MsiInterrupt } from "../spec/msi.js";

/** An interrupt as it reaches the interrupt controllers: an MSI address/data pair and where it came from. */
export interface InterruptMessage {
  addressLo: number;
  addressHi: number;
  data: number;
  /** "device" for a device's MSI; the unit's own events otherwise. */
  origin: "device" | "fault-event" | "invalidation-event";
  /** Name of the remapping unit it passed through or came from. */
  unit?: string;
  /** Requester id of the device, for device interrupts. */
  sid?: number;
  /** The decoded interrupt (vector, destination, …), for device interrupts. */
  irq?: MsiInterrupt;
  /** Whether interrupt remapping translated it (false: passed through). */
  remapped?: boolean;
}

export type InterruptSink = (message: InterruptMessage) => void;
