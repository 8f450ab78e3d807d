/**
 * The node's live feed: one ordered JetStream consumer on `<prefix>.*` (every channel of the stream), started
 * with the first listener, dispatching each message to the local listeners of its subject in offset order.
 *
 * Why one wildcard consumer rather than one per channel: a consumer costs server state and heartbeats, and a
 * node typically listens to many channels; JetStream's ordered consumer already gives a gap-free feed in stream
 * order that survives reconnects (nats.js recreates it after the last stream sequence it delivered). The price is
 * that a node receives the appends of channels nobody on it listens to (dropped after a map lookup).
 *
 * Each listener still checks offsets, as in the other transports: a duplicate (offset <= last) is skipped, a gap
 * (offset > last + 1, possible after the stream was recreated or a message was trimmed before delivery) is
 * filled from history (`ChannelLog.read`) before anything later is delivered, and an entry of another epoch is
 * delivered as is (the caller resets). When the stream is recreated its sequences restart, so Nats.ts calls
 * `restart` and the consumer starts over at sequence 1 of the new stream.
 *
 * After every reconnect Nats.ts calls `resume`: a fresh consumer starts right after the last message dispatched,
 * instead of relying on nats.js to recover its own. nats.js 3.4's ordered consumer stalls after a server
 * restart: it re-creates itself, but its first pull then asks for 0 messages (the pending count of the pull lost
 * with the old server is never cleared), and it only recovers after two missed idle heartbeats (30 s).
 *
 * On a cluster the connection can stay up while the consumer's server goes away: the stream's leader was killed
 * or paused, or the server hosting the (single-replica, in-memory) consumer was. So the same fresh start happens
 * when the stream elects a new leader (Nats.ts watches the advisory and calls `resume`) and when the consumer
 * missed two idle heartbeats: pulls expire after `pullExpiresMs` (default 4 s), heartbeats come every half of
 * that, so a silent consumer is replaced about 4 s after it went quiet. A new consumer starts after the last
 * message dispatched; anything the old one still delivers is ignored (generation), so nothing is delivered twice
 * or out of order, and the offset checks below would catch it if it were.
 */
import { type ConsumerMessages, DeliverPolicy, type JsMsg } from "@nats-io/jetstream"
import type { Position } from "../../protocol/Position.ts"
import type { Listener } from "../Transport.ts"
import type { ChannelLog } from "./ChannelLog.ts"
import { decode, type Stored } from "./codec.ts"
import type { Link } from "./Link.ts"

export interface LiveFeedOptions {
  /** Entries per history read while filling a gap (default 500). */
  readonly fillBatch?: number
  /** Messages the consumer asks for per pull (default 1000). */
  readonly pullBatch?: number
  /** How long one pull waits on the server (default 4000 ms, at least 1000); idle heartbeats every half of it. */
  readonly pullExpiresMs?: number
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export class LiveFeed {
  private readonly groups = new Map<string, Group>()
  private started: Promise<void> | undefined
  private messages: ConsumerMessages | undefined
  private generation = 0
  private closed = false
  private restarting = false
  private restartAgain = false
  /** The next (re)start begins at sequence 1: the stream was recreated. */
  private fromStart = false
  /** Stream sequence after the last message the current consumer dispatched; where `resume` starts. */
  private nextSeq = 1
  private readonly fillBatch: number
  private readonly pullBatch: number
  private readonly pullExpiresMs: number

  constructor(
    private readonly link: Link,
    readonly log: ChannelLog,
    /** The reader's clock, for age retention during gap fills. */
    readonly now: () => number,
    options: LiveFeedOptions = {}
  ) {
    this.fillBatch = options.fillBatch ?? 500
    this.pullBatch = options.pullBatch ?? 1000
    this.pullExpiresMs = Math.max(1000, options.pullExpiresMs ?? 4000)
  }

  /** Registers a listener; resolves once it will receive every entry appended from now on. Returns its release. */
  async add(channel: string, listener: Listener): Promise<() => void> {
    if (this.closed) throw new Error("the NATS transport is closed")
    await this.ensureStarted()
    const subject = this.link.subject(channel)
    let group = this.groups.get(subject)
    if (group === undefined) {
      group = { channel, subscriptions: new Set() }
      this.groups.set(subject, group)
    }
    const subscription = new Subscription(channel, listener, this)
    group.subscriptions.add(subscription)
    const release = () => {
      subscription.closed = true
      group.subscriptions.delete(subscription)
      if (group.subscriptions.size === 0 && this.groups.get(subject) === group) this.groups.delete(subject)
    }
    try {
      // Registered before reading the top: whatever the feed brings meanwhile is buffered, none of it is lost.
      const last = await this.log.last(channel)
      subscription.start(last === undefined ? { epoch: "", offset: 0 } : { epoch: last.epoch, offset: last.offset })
    } catch (error) {
      release()
      throw error
    }
    return release
  }

  /** The stream was recreated (its sequences restarted): consume it again from its first message. */
  restart(): void {
    if (this.started === undefined || this.closed) return
    this.fromStart = true
    this.reopen()
  }

  /** The connection came back: consume with a fresh consumer from the first message not dispatched yet. */
  resume(): void {
    // Before the first consumer exists, its start (still under way, or retried by the next `add`) suffices.
    if (this.messages !== undefined) this.reopen()
  }

  private reopen(): void {
    if (this.started === undefined || this.closed) return
    if (this.restarting) {
      this.restartAgain = true
      return
    }
    this.restarting = true
    // Not awaited by registrations: while the server is away they fail fast instead of waiting for this.
    void (async () => {
      do {
        this.restartAgain = false
        const from = this.fromStart ? 1 : this.nextSeq
        this.fromStart = false
        await this.startRetrying(from)
      } while (this.restartAgain && !this.closed)
      this.restarting = false
    })()
  }

  close(): Promise<void> {
    this.closed = true
    this.generation++
    for (const group of this.groups.values()) for (const s of group.subscriptions) s.closed = true
    this.groups.clear()
    const messages = this.messages
    this.messages = undefined
    return messages === undefined ? Promise.resolve() : messages.close().then(() => {})
  }

  report(message: string, cause: unknown): void {
    this.link.report(message, cause)
  }

  get batch(): number {
    return this.fillBatch
  }

  private ensureStarted(): Promise<void> {
    if (this.started === undefined) {
      const starting = this.start(undefined)
      this.started = starting
      starting.catch(() => {
        if (this.started === starting) this.started = undefined
      })
    }
    return this.started
  }

  private async startRetrying(fromSeq: number): Promise<void> {
    let delay = 100
    while (!this.closed) {
      try {
        return await this.start(fromSeq)
      } catch (cause) {
        this.report("tidings nats live feed: restarting the consumer failed; retrying", cause)
        await sleep(delay)
        delay = Math.min(delay * 2, 2000)
      }
    }
  }

  private async start(fromSeq: number | undefined): Promise<void> {
    const generation = ++this.generation
    const { js, jsm, config } = this.link
    const startSeq = fromSeq ?? (await this.link.call(() => jsm.streams.info(config.stream))).state.last_seq + 1
    if (generation === this.generation) this.nextSeq = startSeq
    const consumer = await this.link.call(() =>
      js.consumers.get(config.stream, {
        filter_subjects: `${config.prefix}.*`,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: startSeq
      })
    )
    if (generation !== this.generation) {
      consumer.delete().catch(() => {})
      return
    }
    const messages = await consumer.consume({
      max_messages: this.pullBatch,
      expires: this.pullExpiresMs,
      callback: (message) => {
        if (generation !== this.generation) return
        this.nextSeq = message.seq + 1
        this.dispatch(message)
      }
    })
    void this.watch(messages, generation)
    const previous = this.messages
    this.messages = messages
    if (previous !== undefined) previous.close().catch(() => {})
    if (generation !== this.generation) messages.close().catch(() => {})
  }

  /** Replaces the consumer when it went silent: two idle heartbeats missed (its server is gone or frozen). */
  private async watch(messages: ConsumerMessages, generation: number): Promise<void> {
    try {
      for await (const status of messages.status()) {
        if (generation !== this.generation || this.closed) return
        if (status.type === "heartbeats_missed" && status.count >= 2 && this.link.connected) {
          this.report("tidings nats live feed: the consumer missed its heartbeats; starting a fresh one", status)
          this.reopen()
          return
        }
      }
    } catch {
      // the iterator ends with the consumer
    }
  }

  private dispatch(message: JsMsg): void {
    const group = this.groups.get(message.subject)
    if (group === undefined) return
    const stored = decode(group.channel, message.seq, message.headers, message.data)
    if (stored === undefined) return
    for (const subscription of group.subscriptions) subscription.offer(stored)
  }
}

interface Group {
  readonly channel: string
  readonly subscriptions: Set<Subscription>
}

/**
 * One listener's view of its channel: the position it was last given, and the messages waiting while its start
 * position is being read or a gap is being filled.
 */
class Subscription {
  closed = false
  private last: Position = { epoch: "", offset: 0 }
  private ready = false
  private pending: Array<Stored> = []
  private head = 0

  constructor(
    readonly channel: string,
    private readonly listener: Listener,
    private readonly feed: LiveFeed
  ) {}

  start(position: Position): void {
    this.last = position
    this.drain()
  }

  offer(stored: Stored): void {
    if (this.closed) return
    if (!this.ready) {
      this.pending.push(stored)
      return
    }
    if (!this.step(stored)) {
      this.pending.push(stored)
      this.fill()
    }
  }

  /** Delivers or skips `stored` when it follows what was delivered; false when there is a gap before it. */
  private step(stored: Stored): boolean {
    if (stored.entry === undefined) {
      // An epoch marker: the channel restarted empty under a new epoch.
      if (stored.epoch !== this.last.epoch) this.last = { epoch: stored.epoch, offset: 0 }
      return true
    }
    if (stored.epoch === this.last.epoch) {
      if (stored.offset <= this.last.offset) return true
      if (stored.offset !== this.last.offset + 1) return false
    } else if (stored.offset !== 1) {
      return false
    }
    this.last = { epoch: stored.epoch, offset: stored.offset }
    try {
      this.listener(stored.entry)
    } catch (cause) {
      this.feed.report(`tidings nats live feed: a listener of ${this.channel} threw`, cause)
    }
    return true
  }

  private drain(): void {
    this.ready = true
    while (!this.closed && this.head < this.pending.length) {
      if (!this.step(this.pending[this.head]!)) {
        this.fill()
        return
      }
      this.head++
    }
    this.pending = []
    this.head = 0
  }

  /** Reads the entries missing before the first pending message from history, then drains. */
  private fill(): void {
    this.ready = false
    void this.runFill()
  }

  private async runFill(): Promise<void> {
    let delay = 100
    while (!this.closed) {
      const target = this.pending[this.head]!
      const since: Position = target.epoch === this.last.epoch ? this.last : { epoch: target.epoch, offset: 0 }
      if (since.offset >= target.offset - 1) break
      try {
        const limit = Math.min(this.feed.batch, target.offset - since.offset - 1)
        const result = await this.feed.log.read(this.channel, since, limit, this.feed.now())
        if (this.closed) return
        const entries = result.covered ? result.entries : []
        if (entries.length === 0) {
          // History no longer has them (trimmed, or the epoch moved on): continue after the gap.
          this.feed.report(
            `tidings nats live feed: entries of ${this.channel} before offset ${target.offset} are no longer retained; delivering from there`,
            result.reason ?? "empty read"
          )
          this.last = { epoch: target.epoch, offset: target.offset - 1 }
          break
        }
        const before = this.last
        for (const entry of entries) {
          if (entry.offset >= target.offset) break
          this.step({ seq: 0, epoch: entry.epoch, offset: entry.offset, storedAt: 0, entry })
        }
        if (this.last === before) this.last = { epoch: target.epoch, offset: target.offset - 1 }
        delay = 100
      } catch (cause) {
        if (this.closed) return
        this.feed.report(`tidings nats live feed: reading missed entries of ${this.channel} failed; retrying`, cause)
        await sleep(delay)
        delay = Math.min(delay * 2, 2000)
      }
    }
    if (!this.closed) this.drain()
  }
}
