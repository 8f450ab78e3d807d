/**
 * What the client knows about one channel's log: the last position it accepted (dedup, and the `since` of a
 * resubscribe), the last position its handlers finished (what may be acked), and the last position it acked.
 *
 * Offsets may jump forward within an epoch: the server skips events the client's protocol version does not
 * see, and conflates latest-value events for a slow reader. The server never leaves a silent gap (a lost
 * range is always announced with `reset`), so a jump is accepted as is.
 *
 * Pure bookkeeping, no I/O and no timers: the client feeds it frames and acts on the verdicts (deliver,
 * resubscribe, report a reset). The server assigns every position; this module never invents one, it only
 * moves to positions the server named.
 */
import type { Position } from "../protocol/Position.ts"

export type Verdict =
  /** The next event in order: deliver it. */
  | { readonly _tag: "Deliver" }
  /** Seen already (same epoch, offset at or below the last accepted): drop it. */
  | { readonly _tag: "Duplicate" }
  /**
   * A new epoch arrived without a `reset` frame. Report it as a reset (`previous` → `position`), then
   * deliver the event.
   */
  | { readonly _tag: "EpochChanged"; readonly previous: Position; readonly position: Position }

const deliver: Verdict = { _tag: "Deliver" }
const duplicate: Verdict = { _tag: "Duplicate" }

export type SubscribedVerdict =
  | { readonly _tag: "Live" }
  | { readonly _tag: "EpochChanged"; readonly previous: Position; readonly position: Position }

export class ChannelState {
  /** The last event accepted for delivery; where a resubscribe resumes from. */
  private accepted: Position | undefined
  /** The last event whose handlers all finished. */
  private processed: Position | undefined
  private acked: Position | undefined

  constructor(
    readonly channel: string,
    since?: Position
  ) {
    this.accepted = since
  }

  /** The position to resume from (`subscribe.since`), if any. */
  get position(): Position | undefined {
    return this.accepted
  }

  /** Judges an incoming event and, when it is to be delivered, advances the accepted position. */
  receive(epoch: string, offset: number): Verdict {
    const last = this.accepted
    if (last === undefined) {
      this.accepted = { epoch, offset }
      return deliver
    }
    if (epoch !== last.epoch) {
      this.accepted = { epoch, offset }
      return { _tag: "EpochChanged", previous: last, position: { epoch, offset: Math.max(0, offset - 1) } }
    }
    if (offset <= last.offset) return duplicate
    this.accepted = { epoch, offset }
    return deliver
  }

  /** A `reset`: the live stream continues after `position` (a new epoch, or the oldest retained entry). */
  reset(position: Position): Position | undefined {
    const previous = this.accepted
    this.accepted = position
    return previous
  }

  /** A `subscribed`: the subscription is live and the server has sent everything up to `position`. */
  subscribed(position: Position): SubscribedVerdict {
    const last = this.accepted
    if (last === undefined) {
      this.accepted = position
      return { _tag: "Live" }
    }
    if (last.epoch !== position.epoch) {
      this.accepted = position
      return { _tag: "EpochChanged", previous: last, position }
    }
    // the server had nothing more for this client up to `position` (skipped or conflated events)
    if (position.offset > last.offset) this.accepted = position
    return { _tag: "Live" }
  }

  /** The handlers of the event at `position` finished. */
  markProcessed(position: Position): void {
    this.processed = position
  }

  /** The position to ack, if it moved since the last ack; records it as acked. */
  takeAck(): Position | undefined {
    const p = this.processed
    if (p === undefined) return undefined
    const a = this.acked
    if (a !== undefined && a.epoch === p.epoch && a.offset >= p.offset) return undefined
    this.acked = p
    return p
  }
}
