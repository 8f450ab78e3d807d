/**
 * When to send acks: after `maxEvents` processed events or about `maxDelayMs` after the first unacked one,
 * whichever comes first. Acks are cumulative per channel, so a batch costs one `ack` frame per channel that
 * moved, however many events it covers. The server saves acked positions once a second, so acking more often
 * only costs both sides work; the delay is spread by ±20% per batch so that the subscribers of one channel, who
 * all receive the same event at the same moment, do not ack in lockstep.
 *
 * Owns only the timing; what to ack per channel is ChannelState's, sending is the client's.
 */

export interface AckOptions {
  /** Processed events that trigger an ack batch at once. Default 1,000. */
  readonly maxEvents?: number
  /** How long a processed event waits for its ack (±20%). Default 1,000 ms, the server's cursor-save interval. */
  readonly maxDelayMs?: number
}

export const defaults = { maxEvents: 1000, maxDelayMs: 1000 } as const

/** The spread of each batch's delay around `maxDelayMs`. */
const JITTER = 0.2

export class AckBatcher {
  private pending = 0
  private timer: ReturnType<typeof setTimeout> | undefined
  private readonly maxEvents: number
  private readonly maxDelayMs: number

  /** `flush` sends the acks that are due; it is called from a timer or from `processed`. */
  constructor(
    private readonly flush: () => void,
    options: AckOptions = {},
    private readonly random: () => number = Math.random
  ) {
    this.maxEvents = Math.max(1, options.maxEvents ?? defaults.maxEvents)
    this.maxDelayMs = Math.max(0, options.maxDelayMs ?? defaults.maxDelayMs)
  }

  /** One more event was processed. */
  processed(): void {
    this.pending++
    if (this.pending >= this.maxEvents) {
      this.flushNow()
    } else if (this.timer === undefined) {
      this.timer = setTimeout(
        () => {
          this.timer = undefined
          this.flushNow()
        },
        this.maxDelayMs * (1 - JITTER + 2 * JITTER * this.random())
      )
    }
  }

  /** Sends whatever is due now (before closing, after reconnecting). */
  flushNow(): void {
    this.cancel()
    this.pending = 0
    this.flush()
  }

  cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }
}
