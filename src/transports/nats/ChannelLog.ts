/**
 * Channel logs on JetStream subjects: append with contiguous offsets, read by position, top, for one node.
 *
 * Every channel is one subject of the stream; every message on it carries its epoch and offset in headers
 * (codec.ts). An append is a conditional publish — `Nats-Expected-Last-Subject-Sequence` set to the stream
 * sequence of the channel's newest message as this node last saw it — so two nodes can never both write offset
 * n+1: the loser gets "wrong last sequence", re-reads the subject's last message and retries. Appends to one
 * channel are queued on this node (a conditional publish needs its predecessor's sequence, so they cannot be
 * pipelined); appends to different channels run concurrently and share the connection's pipeline.
 *
 * A channel whose subject holds no message has no epoch: the first append (or `top`) creates a random one, with
 * the same conditional publish, so racing nodes agree. A subject empties when its stream is recreated, when it
 * is purged, or when every message aged out — each of which lost the log, so a new epoch is exactly right.
 *
 * Retention: the stream's own limits (Nats.ts) bound storage; the per-channel `Retention` is applied here on
 * read, by offset arithmetic (maxEntries) and by the stored-at header against the reader's Clock (maxAgeMs).
 *
 * Replay locates the stream sequence of a channel offset with a few "next message of this subject at or after
 * sequence s" lookups (StreamLookup.ts: interpolation between known points, bisection as a fallback; exact when
 * the channel's messages are dense in the stream), then pulls the range through an ephemeral consumer filtered on the subject
 * (Pager.ts). A read that continues exactly where an earlier page of this node stopped skips the lookups: it
 * takes the consumer kept after that page, whose next page is usually already here, and reads the top (the
 * subject's last message) meanwhile; whatever is not plainly the next page falls back to the full read.
 * It does not own the live feed (LiveFeed.ts), cursors (Cursors.ts) or the connection (Link.ts, Nats.ts).
 */
import { randomBytes } from "node:crypto"
import { JetStreamApiError, type PubAck, type SeqMsgRequest } from "@nats-io/jetstream"
import { Empty } from "@nats-io/transport-node"
import type { Position } from "../../protocol/Position.ts"
import {
  type Appended,
  type Entry,
  type Publication,
  type ReadResult,
  type Retention,
  TransportError
} from "../Transport.ts"
import { encodeBody, entryHeaders, markerHeaders, msgIdOf, type Stored } from "./codec.ts"
import { isNoStream, isWrongLastSequence, type Link } from "./Link.ts"
import type { Pager, Reader } from "./Pager.ts"
import { StreamLookup } from "./StreamLookup.ts"

/** What this node believes about a channel's newest message, and the queue of its appends. */
interface ChannelState {
  /** False when the belief may be stale (after any failed publish): re-read before the next append. */
  known: boolean
  /** "" when the subject is empty (no epoch yet). */
  epoch: string
  offset: number
  /** Stream sequence of the newest message, 0 when none. */
  seq: number
  queue: Promise<void>
  busy: number
}

export interface ChannelLogOptions {
  readonly retention: (channel: string) => Retention
  /** Channel states kept for appends (each saves one lookup on the next append). Default 10,000. */
  readonly maxCachedChannels?: number
  /** Conditional-publish attempts per append under contention from other nodes. Default 50. */
  readonly maxAttempts?: number
}

const noop = () => {}
/** Ranges up to this many entries are read with lookups instead of a consumer. */
const smallRange = 3
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
export const newEpoch = (): string => randomBytes(9).toString("base64url")

export class ChannelLog {
  private readonly states = new Map<string, ChannelState>()
  private readonly maxCachedChannels: number
  private readonly maxAttempts: number

  private readonly lookup: StreamLookup

  constructor(
    private readonly link: Link,
    private readonly pager: Pager,
    private readonly options: ChannelLogOptions
  ) {
    this.lookup = new StreamLookup(link)
    this.maxCachedChannels = options.maxCachedChannels ?? 10_000
    this.maxAttempts = options.maxAttempts ?? 50
  }

  /** The newest message of the channel's subject (an entry or an epoch marker), if any. */
  last(channel: string): Promise<Stored | undefined> {
    return this.lookup.last(channel)
  }

  /** Forgets every cached channel state and kept consumer (the stream was recreated, or may have been). */
  invalidateAll(): void {
    for (const state of this.states.values()) state.known = false
    this.pager.closeAll()
  }

  append(
    channel: string,
    publication: Publication,
    idempotencyKey: string | undefined,
    now: number
  ): Promise<Appended> {
    const state = this.state(channel)
    return this.serialize(state, () => this.appendQueued(channel, state, publication, idempotencyKey, now))
  }

  /** The channel's top; creates its epoch (an offset-0 marker message) when the subject is empty. */
  async top(channel: string, now: number): Promise<Position> {
    const last = await this.last(channel)
    if (last !== undefined) return { epoch: last.epoch, offset: last.offset }
    const state = this.state(channel)
    return this.serialize(state, () => this.createEpochQueued(channel, state, now))
  }

  async read(channel: string, since: Position | undefined, limit: number, now: number): Promise<ReadResult> {
    const retention = this.options.retention(channel)
    // The next page of a catch-up: continue with the consumer that read the previous one.
    const reader = since !== undefined && limit >= 1 ? this.pager.take(channel, since.epoch, since.offset) : undefined
    if (reader !== undefined && since !== undefined) {
      const page = await this.continuePage(channel, reader, since, Math.floor(limit), retention, now)
      if (page !== undefined) return page
    }
    const last = await this.last(channel)
    let top: Position
    if (last === undefined) {
      // Empty when looked at; `top` may find entries appended since (it creates the epoch only if there are
      // none): read again then, or this page would end at a top above entries it never returned.
      top = await this.top(channel, now)
      if (top.offset > 0) return this.read(channel, since, limit, now)
    } else {
      top = { epoch: last.epoch, offset: last.offset }
    }
    if (since !== undefined && (since.epoch !== top.epoch || since.offset > top.offset)) {
      // A position ahead of the top cannot come from this incarnation of the log: its offsets will be reused.
      return { entries: [], top, covered: false, reason: "epoch_changed" }
    }
    const oldestByCount = Math.max(1, top.offset - retention.maxEntries + 1)
    if (since !== undefined && since.offset + 1 < oldestByCount) return trimmed(top)
    const from = since === undefined ? oldestByCount : since.offset + 1
    if (last === undefined || from > top.offset) return { entries: [], top, covered: true }

    const oldestByAge = now - retention.maxAgeMs
    const count = (start: number) => Math.min(Math.floor(limit), top.offset - start + 1)
    const first = await this.lookup.locate(channel, from, last)
    if (since !== undefined) {
      if (first === undefined || first.offset !== from || first.storedAt < oldestByAge) return trimmed(top)
      if (limit < 1) return { entries: [], top, covered: true }
      return { entries: (await this.range(channel, first, count(from), top)).map(entryOf), top, covered: true }
    }
    if (first === undefined || limit < 1) return { entries: [], top, covered: true }
    // From the oldest retained entry: skip what aged out (stored-at grows with the offset), page by page.
    let start: Stored | undefined = first
    while (start !== undefined) {
      const page = await this.range(channel, start, count(start.offset), top)
      const fresh = page.findIndex((stored) => stored.storedAt >= oldestByAge)
      if (fresh >= 0) return { entries: page.slice(fresh).map(entryOf), top, covered: true }
      const next = start.offset + page.length
      if (page.length === 0 || next > top.offset) break
      start = await this.lookup.locate(channel, next, last)
    }
    return { entries: [], top, covered: true }
  }

  // ---------------------------------------------------------------------------------------------------------------

  private async appendQueued(
    channel: string,
    state: ChannelState,
    publication: Publication,
    idempotencyKey: string | undefined,
    now: number
  ): Promise<Appended> {
    const subject = this.link.subject(channel)
    const body = encodeBody(publication)
    const msgId = idempotencyKey === undefined ? undefined : msgIdOf(channel, idempotencyKey)
    const started = performance.now()
    for (let attempt = 1; ; attempt++) {
      if (!state.known) await this.refresh(channel, state)
      const epoch = state.epoch === "" ? newEpoch() : state.epoch
      const offset = state.offset + 1
      const headers = entryHeaders(epoch, offset, publication, now, state.seq, msgId)
      let ack: PubAck
      try {
        ack = await this.link.call(() => this.link.publisher.publish(subject, body, headers))
      } catch (error) {
        state.known = false
        if (attempt < this.maxAttempts && (await this.retryable(error, attempt, started))) continue
        throw this.link.toTransportError(error)
      }
      // The stream checks the message id before the expected sequence: a duplicate appended nothing.
      if (ack.duplicate) return this.original(channel, ack.seq, idempotencyKey!)
      state.epoch = epoch
      state.offset = offset
      state.seq = ack.seq
      return {
        channel,
        epoch,
        offset,
        event: publication.event,
        data: publication.data,
        version: publication.version,
        time: publication.time
      }
    }
  }

  private async createEpochQueued(channel: string, state: ChannelState, now: number): Promise<Position> {
    const started = performance.now()
    for (let attempt = 1; ; attempt++) {
      await this.refresh(channel, state)
      if (state.epoch !== "") return { epoch: state.epoch, offset: state.offset }
      const epoch = newEpoch()
      const headers = markerHeaders(epoch, now)
      let ack: PubAck
      try {
        ack = await this.link.call(() => this.link.publisher.publish(this.link.subject(channel), Empty, headers))
      } catch (error) {
        state.known = false
        if (attempt < this.maxAttempts && (await this.retryable(error, attempt, started))) continue
        throw this.link.toTransportError(error)
      }
      state.epoch = epoch
      state.offset = 0
      state.seq = ack.seq
      return { epoch, offset: 0 }
    }
  }

  /** Whether a failed conditional publish is worth another attempt (after recovering what made it fail). */
  private async retryable(error: unknown, attempt: number, started: number): Promise<boolean> {
    if (isWrongLastSequence(error)) {
      // Another node won the race for this offset. Spread the retries of nodes hammering one channel.
      if (attempt > 2) await sleep(Math.random() * Math.min(100, 2 ** attempt))
      return true
    }
    if (isNoStream(error) && this.link.connected) {
      // No responders: the stream is gone (re-create it), or, on a cluster, it has no leader right now (nats-server
      // waits 4–9 s for a silent leader before electing another), and then asking for its info hangs until the
      // timeout. So start the check but do not wait on it for long: publish again after a short pause, for up
      // to the request timeout, and the append goes through as soon as a leader is elected.
      const recovering = this.link.recoverStream()
      recovering.catch(() => {})
      if (performance.now() - started >= this.link.config.timeoutMs) return false
      await Promise.race([recovering, sleep(Math.min(25 * attempt, 250))])
      return true
    }
    if (error instanceof JetStreamApiError && error.status >= 500 && attempt <= 3) {
      // The server is busy with the stream (e.g. it is being deleted): try again shortly.
      await sleep(25 * attempt)
      return true
    }
    return false
  }

  private async refresh(channel: string, state: ChannelState): Promise<void> {
    const last = await this.lookup.lastForAppend(channel)
    state.epoch = last?.epoch ?? ""
    state.offset = last?.offset ?? 0
    state.seq = last?.seq ?? 0
    state.known = true
  }

  /** The entry a duplicate publish points at: the first append made with this idempotency key. */
  private async original(channel: string, seq: number, idempotencyKey: string): Promise<Appended> {
    const query: SeqMsgRequest = { seq }
    const stored = this.lookup.decodeOrFail(channel, await this.lookup.get(query))
    if (stored?.entry === undefined) {
      throw new TransportError({
        message: `the entry first appended to ${channel} with idempotency key ${idempotencyKey} is no longer retained`,
        retryable: false
      })
    }
    return { ...stored.entry, duplicate: true }
  }

  /**
   * Up to `count` entries of the channel from `first` on, continuing its offset in `top`'s epoch without a hole
   * (fewer if some vanished meanwhile).
   */
  private async range(channel: string, first: Stored, count: number, top: Position): Promise<Array<Stored>> {
    if (count <= smallRange) {
      // Cheaper as a few lookups than as a consumer (create, pull, delete).
      const stored = [first]
      for (let previous = first; stored.length < count; ) {
        const next = await this.lookup.next(channel, previous.seq + 1)
        if (next === undefined) break
        stored.push(next)
        previous = next
      }
      return contiguous(stored, first.offset, top.epoch)
    }
    return this.pullPage(await this.pager.open(channel, first.seq), count, first.offset, top)
  }

  /**
   * The page after `since` from `reader`, the consumer kept after the page that ended there, with the top read
   * meanwhile (one round trip for both). Undefined, with the reader closed, when anything is not plainly the
   * next page (a different epoch or top, trimmed entries, a failed pull): the full read decides then.
   */
  private async continuePage(
    channel: string,
    reader: Reader,
    since: Position,
    limit: number,
    retention: Retention,
    now: number
  ): Promise<ReadResult | undefined> {
    const pulled = reader.pull(limit).catch(() => undefined)
    const last = await this.last(channel).catch((error: unknown) => {
      reader.close()
      throw error
    })
    const stored = await pulled
    const from = since.offset + 1
    const usable =
      stored !== undefined &&
      last !== undefined &&
      last.epoch === since.epoch &&
      last.offset >= from &&
      from >= last.offset - retention.maxEntries + 1
    if (!usable) {
      reader.close()
      return undefined
    }
    const top: Position = { epoch: last.epoch, offset: last.offset }
    // Entries appended after the top was read are left for the next read.
    const page = contiguous(stored, from, top.epoch).slice(0, top.offset - from + 1)
    const head = page[0]
    if (head === undefined || head.storedAt < now - retention.maxAgeMs) {
      reader.close()
      return undefined
    }
    this.keepOrClose(reader, page, stored.length, limit, top)
    return { entries: page.map(entryOf), top, covered: true }
  }

  /** The next `count` entries from `reader`, which must continue from offset `from` in `top`'s epoch. */
  private async pullPage(reader: Reader, count: number, from: number, top: Position): Promise<Array<Stored>> {
    let stored: Array<Stored>
    try {
      stored = await reader.pull(count)
    } catch (error) {
      reader.close()
      throw error
    }
    const page = contiguous(stored, from, top.epoch)
    this.keepOrClose(reader, page, stored.length, count, top)
    return page
  }

  /**
   * Keeps `reader` for the next page when it delivered `page` in full (`pulled` messages, as many as the
   * `asked`) and the page ended below the top; closes it otherwise.
   */
  private keepOrClose(reader: Reader, page: Array<Stored>, pulled: number, asked: number, top: Position): void {
    const end = page[page.length - 1]
    if (page.length === pulled && pulled === asked && end !== undefined && end.offset < top.offset) {
      this.pager.keep(reader, top.epoch, end.offset, asked)
    } else reader.close()
  }

  private state(channel: string): ChannelState {
    let state = this.states.get(channel)
    if (state === undefined) {
      if (this.states.size >= this.maxCachedChannels) this.evictIdle()
      state = { known: false, epoch: "", offset: 0, seq: 0, queue: Promise.resolve(), busy: 0 }
      this.states.set(channel, state)
    }
    return state
  }

  /** Drops the oldest tenth of idle channel states (a state is only a cache: dropping one costs one lookup). */
  private evictIdle(): void {
    let budget = Math.max(1, Math.floor(this.maxCachedChannels / 10))
    for (const [channel, state] of this.states) {
      if (budget === 0) return
      if (state.busy > 0) continue
      this.states.delete(channel)
      budget--
    }
  }

  private serialize<A>(state: ChannelState, task: () => Promise<A>): Promise<A> {
    state.busy++
    const run = state.queue.then(task).finally(() => {
      state.busy--
    })
    state.queue = run.then(noop, noop)
    return run
  }
}

const trimmed = (top: Position): ReadResult => ({ entries: [], top, covered: false, reason: "trimmed" })

const entryOf = (stored: Stored): Entry => stored.entry!

/** The prefix of `stored` that continues from offset `from` in `epoch` without a hole (markers end it too). */
const contiguous = (stored: Array<Stored>, from: number, epoch: string): Array<Stored> => {
  for (let i = 0; i < stored.length; i++) {
    const item = stored[i]!
    if (item.offset !== from + i || item.epoch !== epoch || item.entry === undefined) return stored.slice(0, i)
  }
  return stored
}
