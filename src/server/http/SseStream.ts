/**
 * One Server-Sent Events reader: its position in the channel, the entries that arrive while it catches up, and
 * its output. Writes made in one event-loop turn leave in one socket write (its host flushes every dirty stream
 * once per turn); a reader whose socket still holds more than `maxOutboundBytes` from earlier writes when the
 * next flush comes is cut off — its connection is destroyed at once, and it resumes with its Last-Event-ID.
 */
import type { ServerResponse } from "node:http"
import type { Position } from "../../protocol/Position.ts"
import type { Entry } from "../../transports/Transport.ts"

/** What a stream needs from the streams of its server (Sse.ts). */
export interface StreamHost {
  /** The limit on a reader's unsent bytes. */
  readonly maxOutboundBytes: number
  /** `entry` as an SSE message in `version` (built once per entry and version); null when unseen there. */
  readonly messageFor: (entry: Entry, version: number) => string | null
  /** Flushes `stream` at the end of this turn. */
  readonly schedule: (stream: SseStream) => void
  readonly delivered: () => void
  readonly cutOff: () => void
  /** The stream has ended: forget it. */
  readonly closed: (stream: SseStream) => void
}

export const idOf = (position: Position): string => `${position.epoch}:${position.offset}`

export class SseStream {
  /** The last position sent (or skipped); empty epoch until the stream knows where it starts. */
  last: Position = { epoch: "", offset: 0 }
  /** Live entries that arrived while the stream caught up; undefined once it is live. */
  buffered: Array<Entry> | undefined = []
  ended = false
  private pending: Array<string> = []
  /** Bytes waiting in `pending` (approximately: string lengths). */
  pendingBytes = 0

  constructor(
    readonly res: ServerResponse,
    readonly channel: string,
    readonly version: number,
    readonly user: string | null,
    private readonly host: StreamHost
  ) {}

  /** A live entry from the channel's listener. */
  live(entry: Entry): void {
    if (this.buffered) this.buffered.push(entry)
    else this.send(entry)
  }

  /** Sends `entry` unless it was already sent; a new epoch is announced with a reset first. */
  send(entry: Entry): void {
    const { last } = this
    if (entry.epoch === last.epoch && entry.offset <= last.offset) return
    if (last.epoch !== "" && entry.epoch !== last.epoch) {
      // the channel's log started over: say so before its first entry
      const position = { epoch: entry.epoch, offset: 0 }
      this.write(
        `id: ${idOf(position)}\nevent: reset\ndata: ${JSON.stringify({ reason: "epoch_changed", position })}\n\n`
      )
    }
    this.last = { epoch: entry.epoch, offset: entry.offset }
    const message = this.host.messageFor(entry, this.version)
    // an event this version does not see: its position still advances
    if (message === null) return
    this.host.delivered()
    this.write(message)
  }

  reset(reason: string, top: Position): void {
    this.last = top
    this.write(`id: ${idOf(top)}\nevent: reset\ndata: ${JSON.stringify({ reason, position: top })}\n\n`)
  }

  write(text: string): void {
    if (this.ended) return
    if (this.pending.length === 0) this.host.schedule(this)
    this.pending.push(text)
    this.pendingBytes += text.length
  }

  /** Bytes the reader has not taken yet: in the socket and waiting here. */
  get unsent(): number {
    return this.res.writableLength + this.pendingBytes
  }

  /**
   * Writes what is waiting, in one write. `checked`: cut the reader off first if its socket still holds more than
   * the limit from earlier writes (a catch-up paces itself instead, waiting for the socket to drain).
   */
  flush(checked: boolean): void {
    if (this.ended || this.pending.length === 0) return
    if (checked && this.res.writableLength > this.host.maxOutboundBytes) {
      this.host.cutOff()
      this.close(true)
      return
    }
    const text = this.pending.length === 1 ? this.pending[0]! : this.pending.join("")
    this.pending = []
    this.pendingBytes = 0
    this.res.write(text)
  }

  /** Ends the stream; `destroy` drops the connection (a reader that does not read would hold it open). */
  close(destroy = false): void {
    if (this.ended) return
    this.ended = true
    this.pending = []
    this.pendingBytes = 0
    this.buffered = undefined
    this.host.closed(this)
    if (destroy) this.res.destroy()
    else if (!this.res.writableEnded) this.res.end()
  }
}
