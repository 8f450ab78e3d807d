/**
 * The client's side of the compact envelope: the aliases the server announced on the current connection, and the
 * expansion of an array event frame `[alias, offset, event, data, time]` into the self-describing event frame the
 * rest of the client handles (channel and epoch from the latest `alias` frame for that alias).
 */
import { Result, Schema } from "effect"
import { type AliasFrame, CompactEvent, type EventFrame } from "../protocol/Frames.ts"

const decodeCompactEvent = Schema.decodeUnknownResult(CompactEvent)

interface Stream {
  readonly channel: string
  readonly epoch: string
}

export class CompactEvents {
  private readonly streams = new Map<number, Stream>()

  /** An `alias` frame: the events of its alias that follow are of its channel and epoch. */
  announce(frame: AliasFrame): void {
    this.streams.set(frame.alias, { channel: frame.channel, epoch: frame.epoch })
  }

  /** A new connection: aliases are per connection. */
  clear(): void {
    this.streams.clear()
  }

  /** The event frame an array frame stands for, or why it cannot be read. */
  expand(value: ReadonlyArray<unknown>): EventFrame | string {
    const decoded = decodeCompactEvent(value)
    if (Result.isFailure(decoded)) {
      return `the server sent an array frame that is not [alias, offset, event, data, time]: ${decoded.failure.message}`
    }
    const [alias, offset, event, data, time] = decoded.success
    const stream = this.streams.get(alias)
    if (stream === undefined) return `the server sent an event for alias ${alias} before an alias frame named it`
    return { type: "event", channel: stream.channel, epoch: stream.epoch, offset, event, data, time }
  }
}
