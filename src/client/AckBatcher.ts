/**
 * When to send acks: after `maxEvents` processed events or `maxDelayMs` after the first unacked one,
 * whichever comes first. Acks are cumulative per channel, so a batch costs one `ack` frame per channel that
 * moved, however many events it covers.
 *
 * Owns only the timing; what to ack per channel is ChannelState's, sending is the client's.
 */

export interface AckOptions {
  /** Processed events that trigger an ack batch at once. Default 100. */
  readonly maxEvents?: number
  /** Longest time a processed event waits for its ack. Default 250 ms. */
  readonly maxDelayMs?: number
}

export const defaults = { maxEvents: 100, maxDelayMs: 250 } as const

export class AckBatcher {
  private pending = 0
  private timer: ReturnType<typeof setTimeout> | undefined
  private readonly maxEvents: number
  private readonly maxDelayMs: number

  /** `flush` sends the acks that are due; it is called from a timer or from `processed`. */
  constructor(
    private readonly flush: () => void,
    options: AckOptions = {}
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
      this.timer = setTimeout(() => {
        this.timer = undefined
        this.flushNow()
      }, this.maxDelayMs)
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
