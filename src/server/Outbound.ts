/**
 * A connection's outbound buffer: frames queued since the last tick are written together, as one WebSocket
 * message of newline-separated frames, once per event-loop turn (one `send` per socket per tick however many
 * frames it got). The buffer is bounded in bytes together with what the socket itself still holds; past the
 * bound the connection is a slow consumer and `onOverflow` closes it (resumable: the client resumes from its
 * acked position). Latest-value frames conflate: while a socket is backed up, only the newest frame per key
 * is kept, and it does not count toward the bound.
 *
 * Frames are counted in UTF-16 code units (string length), a cheap bound that is never below the byte count
 * of ASCII JSON; docs/security.md states it.
 */
import type { WebSocket } from "ws"

/** The part of a ws socket this module uses (so tests and benches can pass a fake). */
export type SocketLike = Pick<WebSocket, "send" | "bufferedAmount" | "readyState">

const OPEN = 1

const dirty: Array<Outbound> = []
let flushScheduled = false

const flushAll = () => {
  flushScheduled = false
  // a flush can enqueue more (it cannot today, but keep the loop safe): take the current batch only
  const batch = dirty.splice(0, dirty.length)
  for (const out of batch) out.flush()
}

export class Outbound {
  private frames: Array<string> = []
  private bytes = 0
  private queued = false
  private closed = false
  /** Latest-value frames waiting for the socket to drain, by conflation key. */
  private latest: Map<string, string> | undefined
  private retryTimer: ReturnType<typeof setTimeout> | undefined

  constructor(
    private readonly socket: SocketLike,
    private readonly maxBytes: number,
    private readonly onOverflow: () => void,
    /** Called after each socket write with the number of frames and bytes written. */
    private readonly onWrite: (frames: number, bytes: number) => void = () => {}
  ) {}

  /** Bytes waiting here plus bytes the socket has not handed to the kernel yet. */
  get buffered(): number {
    return this.bytes + this.socket.bufferedAmount
  }

  push(frame: string): void {
    if (this.closed) return
    this.frames.push(frame)
    this.bytes += frame.length
    if (this.bytes + this.socket.bufferedAmount > this.maxBytes) {
      this.close()
      this.onOverflow()
      return
    }
    this.schedule()
  }

  /**
   * Queues a latest-value frame. While the socket is backed up (more than a quarter of the bound waiting), a
   * newer frame with the same key replaces an older one instead of queueing behind it.
   */
  pushLatest(key: string, frame: string): void {
    if (this.closed) return
    if (this.socket.bufferedAmount + this.bytes > this.maxBytes / 4) {
      if (!this.latest) this.latest = new Map()
      this.latest.delete(key) // re-insert so the newest key is written last
      this.latest.set(key, frame)
      this.schedule()
      return
    }
    this.push(frame)
  }

  private schedule(): void {
    if (this.queued) return
    this.queued = true
    dirty.push(this)
    if (!flushScheduled) {
      flushScheduled = true
      setImmediate(flushAll)
    }
  }

  flush(): void {
    this.queued = false
    if (this.closed || this.socket.readyState !== OPEN) {
      this.frames = []
      this.bytes = 0
      return
    }
    if (this.latest && this.socket.bufferedAmount <= this.maxBytes / 4) {
      for (const frame of this.latest.values()) {
        this.frames.push(frame)
        this.bytes += frame.length
      }
      this.latest = undefined
    }
    const count = this.frames.length
    if (count > 0) {
      const message = count === 1 ? this.frames[0]! : this.frames.join("\n")
      const bytes = this.bytes
      this.frames = []
      this.bytes = 0
      this.socket.send(message)
      this.onWrite(count, bytes)
    }
    // conflated frames still waiting for the socket to drain: look again shortly (not every tick: no spinning)
    if (this.latest && !this.retryTimer) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined
        this.schedule()
      }, 20)
    }
  }

  /** Frames still unsent (for graceful shutdown: wait until this and bufferedAmount reach 0). */
  get idle(): boolean {
    return this.frames.length === 0 && !this.latest && this.socket.bufferedAmount === 0
  }

  close(): void {
    this.closed = true
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.frames = []
    this.bytes = 0
    this.latest = undefined
  }
}
