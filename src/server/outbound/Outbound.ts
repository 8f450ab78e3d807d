/**
 * A connection's outbound buffer: frames queued since the last flush pass are written together, as one WebSocket
 * message of newline-separated frames (one `send` per socket per pass however many frames it got; a large backlog
 * is cut into messages of about 64 KiB). Passes run once per event-loop turn, in slices of about 2 ms (see
 * SLICE_MS), paced under load (see PACING). The buffer is bounded in bytes together with what the socket itself
 * still holds; past the bound the connection is a slow consumer and its owner's `outboundOverflow` closes it
 * (resumable: the client resumes from its acked position).
 * Latest-value frames conflate: while a socket is backed up, only the newest frame per key is kept, and it does
 * not count toward the bound.
 *
 * Fan-out frames arrive as `SharedFrame`s — one object per (entry, protocol version), the same for every
 * recipient — so the bytes of a pass's batch are built once and handed to every socket that got the same batch:
 * a one-frame batch sends the frame's own Buffer, and a multi-frame batch equal to the previous socket's (the
 * usual case: the subscribers of one channel are flushed one after another) reuses its joined Buffer. Per socket
 * there is then no string join, no UTF-8 encoding and no byte counting left, only the write itself. Control
 * frames (replies, errors, pings) are plain strings and go out as text.
 * A connection that negotiated MessagePack gets binary messages instead: every frame it is sent is a SharedFrame
 * holding MessagePack bytes (control frames too, as frames for that socket alone), and a batch is those bytes back
 * to back, with no separator (a MessagePack value knows its own length).
 *
 * Frames are counted in UTF-16 code units (string length), a cheap bound that is never below the byte count
 * of ASCII JSON; docs/security.md states it.
 */
import { performance } from "node:perf_hooks"
import type { WebSocket } from "ws"
import { binaryFrame, type FrameStream, frameStream, textFrame } from "./RawFrames.ts"

/** The part of a ws socket this module uses (so tests and benches can pass a fake). */
export type SocketLike = Pick<WebSocket, "send" | "bufferedAmount" | "readyState"> &
  Partial<Pick<WebSocket, "extensions">>

/**
 * A frame written to many sockets: its JSON text (and its UTF-8 bytes, built on first use) or its MessagePack
 * bytes. `shared` says whether several sockets will get it (a live entry fanned out, or a replayed entry a second
 * client asked for); a JSON frame for one socket is sent as text, since building bytes it alone uses would only
 * add a copy.
 */
export class SharedFrame {
  private buffer: Buffer | undefined
  private framed: Buffer | undefined

  constructor(
    /** JSON text, or MessagePack bytes (a binary frame). */
    readonly payload: string | Uint8Array,
    public shared: boolean,
    /** When the entry was published (ms since the epoch), for the publish → socket-write latency metric. */
    readonly time?: number
  ) {}

  get binary(): boolean {
    return typeof this.payload !== "string"
  }

  get length(): number {
    return this.payload.length
  }

  get bytes(): Buffer {
    if (this.buffer === undefined) {
      const payload = this.payload
      this.buffer =
        typeof payload === "string"
          ? Buffer.from(payload)
          : Buffer.isBuffer(payload)
            ? payload
            : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
    }
    return this.buffer
  }

  /** The whole WebSocket frame carrying these bytes alone (see RawFrames.ts), built on first use. */
  get frame(): Buffer {
    if (this.framed === undefined) this.framed = this.binary ? binaryFrame(this.bytes) : textFrame(this.bytes)
    return this.framed
  }
}

export type OutFrame = string | SharedFrame

/** The connection an Outbound writes for: its socket and bound, and what the Outbound reports to it. */
export interface OutboundOwner {
  readonly socket: SocketLike
  /** Bytes allowed to wait here and in the socket together (Limits.maxOutboundBytes). */
  readonly maxOutboundBytes: number
  /** The bound was passed: the Outbound is closed; the owner closes the connection (slow consumer). */
  outboundOverflow(): void
  /** After each socket write: frames and bytes written, and the publish time of the oldest event in it (if any). */
  outboundWrite(frames: number, bytes: number, oldestEventTime: number | undefined): void
}

const OPEN = 1
/** A pass's frames beyond this many UTF-16 units are split into several messages (see `chunks`). */
const MESSAGE_BYTES = 64 * 1024
const SEPARATOR = Buffer.from("\n")
/** Buffers of JSON frames are sent as text messages, of MessagePack frames as binary ones. */
const AS_TEXT = { binary: false } as const
const AS_BINARY = { binary: true } as const

const isBinary = (frames: ReadonlyArray<OutFrame>): boolean => {
  const first = frames[0]
  return first !== undefined && typeof first !== "string" && first.binary
}

const dirty: Array<Outbound> = []
let flushScheduled = false

const sameFrames = (a: ReadonlyArray<OutFrame>, b: ReadonlyArray<OutFrame>): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** Shared frames' bytes joined by newlines (JSON), or back to back (MessagePack). */
const joinBytes = (frames: ReadonlyArray<OutFrame>): Buffer => {
  if (frames.length === 1) return (frames[0] as SharedFrame).bytes
  const separated = !isBinary(frames)
  const parts: Array<Buffer> = []
  for (let i = 0; i < frames.length; i++) {
    if (i > 0 && separated) parts.push(SEPARATOR)
    parts.push((frames[i] as SharedFrame).bytes)
  }
  return Buffer.concat(parts)
}

/** Frames cut into runs of about MESSAGE_BYTES (a frame larger than that is a run of its own). */
const chunks = (frames: ReadonlyArray<OutFrame>): Array<ReadonlyArray<OutFrame>> => {
  const runs: Array<ReadonlyArray<OutFrame>> = []
  let start = 0
  let size = 0
  for (let i = 0; i < frames.length; i++) {
    size += frames[i]!.length + 1
    if (size >= MESSAGE_BYTES || i === frames.length - 1) {
      runs.push(frames.slice(start, i + 1))
      start = i + 1
      size = 0
    }
  }
  return runs
}

/**
 * A batch of several shared frames as messages: newline-joined, cut at about MESSAGE_BYTES, as bytes and (built on
 * first use) as prebuilt WebSocket frames for RawFrames.ts.
 */
interface SharedBatch {
  readonly frames: ReadonlyArray<OutFrame>
  readonly bytes: ReadonlyArray<Buffer>
  wsFrames?: ReadonlyArray<Buffer>
}

/** The last batch built during this flush pass, reused by the next socket with the same frames. */
let lastBatch: SharedBatch | undefined

const sharedBatch = (frames: ReadonlyArray<OutFrame>, size: number): SharedBatch => {
  if (lastBatch !== undefined && sameFrames(lastBatch.frames, frames)) return lastBatch
  lastBatch = { frames, bytes: (size > MESSAGE_BYTES ? chunks(frames) : [frames]).map(joinBytes) }
  return lastBatch
}

const textOf = (frame: OutFrame): string => (typeof frame === "string" ? frame : (frame.payload as string))

/** The publish time of the first event frame in a write (frames are queued in publish order per channel). */
const oldestEventTime = (frames: ReadonlyArray<OutFrame>): number | undefined => {
  for (const frame of frames) if (typeof frame !== "string" && frame.time !== undefined) return frame.time
  return undefined
}

/**
 * Write pacing, only while the event loop is saturated (utilization above SATURATED over the last ~100 ms): after
 * a flush pass that took T ms, the next pass waits until T × PACING has passed since it ended (at most
 * MAX_PAUSE_MS). The pause lets several events reach each socket in one write — a socket write costs far more
 * than the bytes in it, on both ends — and keeps flushing to at most 1 / (1 + PACING) of the loop, so publishing,
 * acks and timers are not starved. Below saturation every pass runs as soon as it can (no added latency), and
 * passes cheaper than MIN_PAUSED_PASS_MS are never followed by a pause. On the 2-core bench machine (1,000
 * subscribers): flushing every turn kept the server at 94–100% CPU from 65 events/s on, with p99 over 50 ms;
 * pacing every pass cut its CPU per delivery but added ~10 ms p50 at 51 events/s (docs/performance.md).
 */
const PACING = 1.5
const MAX_PAUSE_MS = 10
/** Passes cheaper than this are not followed by a pause (timer granularity is about a millisecond anyway). */
const MIN_PAUSED_PASS_MS = 1
let nextFlushAt = 0

/**
 * A pass hands the event loop back after about SLICE_MS and goes on at the next turn, so socket reads (a broker's
 * acknowledgements, clients' commands) wait for a slice rather than for a pass over every socket. Measured on the
 * bench (1,000 subscribers, `--rates 131,336,537,859`, two runs each way): NATS fan-out passed 131k to 336k
 * deliveries/s at p99 ≤ 50 ms instead of failing from 131k (its appends to one channel wait for each other's
 * acknowledgement, which waited for whole passes); memory p50 9 to 13 ms instead of 14 to 19 ms.
 */
const SLICE_MS = 2
/** The sockets of the pass in progress, how far it got, and the CPU time of its slices so far (for pacing). */
let pass: Array<Outbound> = []
let passAt = 0
let passBusy = 0

const flushAll = () => {
  flushScheduled = false
  const started = performance.now()
  if (passAt >= pass.length) {
    // a new pass: the sockets dirty now; those made dirty while it runs wait for the next one
    pass = dirty.splice(0, dirty.length)
    passAt = 0
    passBusy = 0
  }
  while (passAt < pass.length) {
    pass[passAt++]!.flush()
    if (SLICE_MS >= 0 && (passAt & 63) === 0 && performance.now() - started >= SLICE_MS) break
  }
  lastBatch = undefined
  const ended = performance.now()
  passBusy += ended - started
  if (passAt < pass.length) {
    flushScheduled = true
    setImmediate(flushAll)
    return
  }
  pass = []
  passAt = 0
  nextFlushAt =
    passBusy < MIN_PAUSED_PASS_MS || !saturated(ended) ? 0 : ended + Math.min(MAX_PAUSE_MS, passBusy * PACING)
  // sockets made dirty between slices found a flush already scheduled (this pass): schedule theirs now
  if (dirty.length > 0) scheduleFlush()
}

/** Event-loop utilization above which passes are paced (below it, every pass runs as soon as it can). */
const SATURATED = 0.85
let utilization = performance.eventLoopUtilization()
let utilizationAt = 0
let busy = false

/** Whether the event loop was nearly always busy over the last 100 ms or so (measured at most that often). */
const saturated = (now: number): boolean => {
  if (now - utilizationAt >= 100) {
    const current = performance.eventLoopUtilization()
    busy = performance.eventLoopUtilization(current, utilization).utilization > SATURATED
    utilization = current
    utilizationAt = now
  }
  return busy
}

const scheduleFlush = () => {
  if (flushScheduled) return
  flushScheduled = true
  const wait = nextFlushAt - performance.now()
  if (wait >= 1) setTimeout(flushAll, wait)
  else setImmediate(flushAll)
}

/**
 * The queue of an Outbound with nothing queued, shared (frozen: pushing onto it throws), so an idle connection
 * keeps no empty array of its own; `queue` replaces it at the first frame.
 */
const NO_FRAMES = Object.freeze([]) as unknown as Array<OutFrame>

/** Bits of an Outbound's `flags`: one field instead of three booleans (a connection's memory is counted in bytes). */
const QUEUED = 1
const CLOSED = 2
/** Some queued frame is not a shared one (else the batch can be sent as shared bytes). */
const UNSHARED = 4
/** Every frame in a message of its own (plain connections that did not ask for batches). */
const ONE_PER_MESSAGE = 8

export class Outbound {
  private frames: Array<OutFrame> = NO_FRAMES
  private bytes = 0
  private flags = 0
  /** Latest-value frames waiting for the socket to drain, by conflation key. */
  private latest: Map<string, OutFrame> | undefined
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  /** Extra room for one frame larger than half the bound while it is in flight. */
  private allowance = 0
  /** The TCP stream for prebuilt frames (RawFrames.ts), looked up at the first shared write; undefined: ws's send. */
  private stream: FrameStream | undefined | null = null

  /** The connection (an object, not closures: a connection's memory is counted in bytes). */
  constructor(private readonly owner: OutboundOwner) {}

  /** From now on, one frame per WebSocket message instead of newline-joined batches. */
  oneFramePerMessage(): void {
    this.flags |= ONE_PER_MESSAGE
  }

  private get socket(): SocketLike {
    return this.owner.socket
  }

  private get maxBytes(): number {
    return this.owner.maxOutboundBytes
  }

  /** Bytes waiting here plus bytes the socket has not handed to the kernel yet. */
  get buffered(): number {
    return this.bytes + this.socket.bufferedAmount
  }

  push(frame: OutFrame): void {
    if (this.flags & CLOSED) return
    // held latest-value frames go first: a later event must never overtake an earlier one (the client drops
    // an offset below one it has seen), so conflation collapses only latest values queued back to back
    if (this.latest) this.releaseLatest()
    this.queue(frame)
    this.bytes += frame.length
    if (typeof frame === "string" || !frame.shared) this.flags |= UNSHARED
    // one event larger than the bound must still reach a reader that keeps up: the bound stretches by the
    // largest such frame in flight, so only a reader that falls behind by more than the bound is closed
    if (frame.length > this.maxBytes / 2 && frame.length > this.allowance) this.allowance = frame.length
    if (this.bytes + this.socket.bufferedAmount > this.maxBytes + this.allowance) {
      this.close()
      this.owner.outboundOverflow()
      return
    }
    this.schedule()
  }

  /**
   * Queues a latest-value frame. While the socket is backed up (more than a quarter of the bound waiting), a
   * newer frame with the same key replaces an older one instead of queueing behind it.
   */
  pushLatest(key: string, frame: OutFrame): void {
    if (this.flags & CLOSED) return
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
    if (this.flags & QUEUED) return
    this.flags |= QUEUED
    dirty.push(this)
    scheduleFlush()
  }

  flush(): void {
    this.flags &= ~QUEUED
    if (this.flags & CLOSED || this.socket.readyState !== OPEN) {
      this.emptyQueue()
      return
    }
    if (this.latest && this.socket.bufferedAmount <= this.maxBytes / 4) this.releaseLatest()
    if (this.socket.bufferedAmount === 0) this.allowance = 0
    const frames = this.frames
    const count = frames.length
    if (count > 0) {
      const bytes = this.bytes
      const shared = (this.flags & UNSHARED) === 0
      this.emptyQueue()
      if (this.flags & ONE_PER_MESSAGE) this.sendEach(frames)
      else if (shared) this.sendShared(frames, bytes)
      else this.sendText(frames, bytes)
      this.owner.outboundWrite(count, bytes, oldestEventTime(frames))
    }
    // conflated frames still waiting for the socket to drain: look again shortly (not every tick: no spinning)
    if (this.latest && !this.retryTimer) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined
        this.schedule()
      }, 20)
    }
  }

  /**
   * A large backlog (a replay page, a burst) goes out as several messages of about MESSAGE_BYTES each, so the
   * client parses the first while the rest is still on the wire instead of waiting for one huge message.
   */
  /** Shared frames: prebuilt WebSocket frames straight to the TCP stream where possible, else ws's send. */
  private sendShared(frames: ReadonlyArray<OutFrame>, size: number): void {
    const stream = this.rawStream()
    const binary = isBinary(frames)
    if (frames.length === 1) {
      const frame = frames[0] as SharedFrame
      if (stream) stream.write(frame.frame)
      else this.socket.send(frame.bytes, binary ? AS_BINARY : AS_TEXT)
      return
    }
    const batch = sharedBatch(frames, size)
    if (stream) {
      for (const frame of (batch.wsFrames ??= batch.bytes.map(binary ? binaryFrame : textFrame))) stream.write(frame)
    } else for (const bytes of batch.bytes) this.socket.send(bytes, binary ? AS_BINARY : AS_TEXT)
  }

  /** Each frame in a message of its own. */
  private sendEach(frames: ReadonlyArray<OutFrame>): void {
    const stream = this.rawStream()
    for (const frame of frames) {
      if (typeof frame === "string") this.socket.send(frame)
      else if (frame.binary) this.socket.send(frame.bytes, AS_BINARY)
      else if (!frame.shared) this.socket.send(textOf(frame))
      else if (stream) stream.write(frame.frame)
      else this.socket.send(frame.bytes, AS_TEXT)
    }
  }

  /**
   * Frames for this socket alone, as text — or, for MessagePack, as binary bytes back to back (a large backlog in
   * messages of about MESSAGE_BYTES).
   */
  private sendText(frames: ReadonlyArray<OutFrame>, size: number): void {
    const binary = isBinary(frames)
    for (const run of frames.length > 1 && size > MESSAGE_BYTES ? chunks(frames) : [frames]) {
      if (binary) this.socket.send(joinBytes(run), AS_BINARY)
      else this.socket.send(run.length === 1 ? textOf(run[0]!) : run.map(textOf).join("\n"))
    }
  }

  private rawStream(): FrameStream | undefined {
    if (this.stream === null) this.stream = frameStream(this.socket)
    return this.stream
  }

  private emptyQueue(): void {
    this.frames = NO_FRAMES
    this.bytes = 0
    this.flags &= ~UNSHARED
  }

  private queue(frame: OutFrame): void {
    if (this.frames === NO_FRAMES) this.frames = [frame]
    else this.frames.push(frame)
  }

  /** Moves the held latest-value frames into the queue, in the order they were last updated. */
  private releaseLatest(): void {
    for (const frame of this.latest!.values()) {
      this.queue(frame)
      this.bytes += frame.length
      if (typeof frame === "string" || !frame.shared) this.flags |= UNSHARED
    }
    this.latest = undefined
  }

  /** Frames still unsent (for graceful shutdown: wait until this and bufferedAmount reach 0). */
  get idle(): boolean {
    return this.frames.length === 0 && !this.latest && this.socket.bufferedAmount === 0
  }

  close(): void {
    this.flags |= CLOSED
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.emptyQueue()
    this.latest = undefined
  }
}
