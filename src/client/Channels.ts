/**
 * Every channel the client receives: which ones the app wants (and so are resubscribed after each welcome),
 * the verdict on each incoming event (deliver or drop), in-order delivery to typed
 * handlers, reset reports, and acks once handlers returned.
 *
 * Positions are ChannelState's, ordering Delivery's, ack timing AckBatcher's. The connection (Connection.ts)
 * feeds frames in and carries frames out through a ChannelsPort; it owns sockets, auth and commands.
 */
import { Result } from "effect"
import type { ClientFrame, EventFrame, ResetReason } from "../protocol/Frames.ts"
import type { Position } from "../protocol/Position.ts"
import type { Problem } from "../protocol/ProtocolCodec.ts"
import { AckBatcher, type AckOptions } from "./AckBatcher.ts"
import { ChannelState } from "./ChannelState.ts"
import { Delivery } from "./Delivery.ts"
import { type ClientIssue, ProtocolViolation, type ServerError } from "./errors.ts"
import {
  addTo,
  addToSet,
  type ErasedEvent,
  type ErasedEventHandler,
  type ErasedHandler,
  type ErasedResetHandler,
  runner,
  SubscriptionImpl
} from "./Subscription.ts"
import type { EventMeta, ResetNotice, SubscribedInfo } from "./types.ts"

export interface ChannelsPort {
  /** Whether a welcomed connection is up; frames are only sent then. */
  readonly welcomed: () => boolean
  readonly send: (frame: ClientFrame) => void
  readonly issue: (issue: ClientIssue) => void
  /** Why the client closed, once it has. */
  readonly closedWith: () => unknown
}

export interface SubscribeOptions {
  readonly since?: Position | undefined
  readonly fromStart?: boolean | undefined
  readonly onEvent?: ErasedEventHandler | undefined
  readonly onReset?: ErasedResetHandler | undefined
}

/** wanted: subscribed by the app; implicit: events arrive without a subscribe of ours; dropped: ignored. */
type Mode = "wanted" | "implicit" | "dropped"

interface Entry {
  readonly state: ChannelState
  readonly delivery: Delivery
  readonly subscriptions: Set<SubscriptionImpl>
  mode: Mode
  /** A subscribe was sent on this connection and not answered yet. */
  subscribing: boolean
  live: SubscribedInfo | undefined
  /** The server's refusal of the last subscribe, until the app subscribes again. */
  refused: ServerError | undefined
  /** With no position yet, ask for everything the channel retains. */
  fromStart: boolean
  /** Subscribes refused as `unavailable` in a row (the server's broker is down): the next retry waits longer. */
  retries: number
  retryTimer: ReturnType<typeof setTimeout> | undefined
}

/** Error codes that answer a subscribe; other errors naming a channel (an ack's `bad_position`) do not. */
const subscribeRefusals = new Set(["forbidden", "too_many_subscriptions", "unavailable"])
/** Retry delays after `unavailable`: 500 ms, doubling up to 5 s. */
const retryDelayMs = (retries: number) => Math.min(250 * 2 ** retries, 5_000)

export class Channels {
  private readonly entries = new Map<string, Entry>()
  private readonly handlers = new Map<string, Set<ErasedHandler>>()
  private readonly resetListeners = new Set<ErasedResetHandler>()
  private readonly acks: AckBatcher
  private closed = false

  constructor(
    private readonly port: ChannelsPort,
    /** Decodes event data with the negotiated version's schema. */
    private readonly decode: (event: string, data: unknown) => Result.Result<unknown, Problem>,
    ack?: AckOptions
  ) {
    this.acks = new AckBatcher(() => this.sendAcks(), ack)
  }

  // ---- the app's side ----------------------------------------------------------------------------------------

  on(event: string, handler: ErasedHandler): () => void {
    return addTo(this.handlers, event, handler)
  }

  onReset(listener: ErasedResetHandler): () => void {
    return addToSet(this.resetListeners, listener)
  }

  position(channel: string): Position | undefined {
    return this.entries.get(channel)?.state.position
  }

  subscribe(channel: string, options: SubscribeOptions): SubscriptionImpl {
    const entry = this.entries.get(channel) ?? this.create(channel, "dropped", options.since)
    const sub = new SubscriptionImpl(channel, {
      position: () => entry.state.position,
      live: () => entry.live,
      failure: () => this.port.closedWith() ?? entry.refused,
      release: (s) => this.release(entry, s)
    })
    if (options.fromStart) entry.fromStart = true
    if (options.onEvent) sub.onEvent(options.onEvent)
    if (options.onReset) sub.onReset(options.onReset)
    entry.subscriptions.add(sub)
    if (entry.mode !== "wanted") {
      entry.mode = "wanted"
      entry.live = undefined
      entry.refused = undefined
      if (this.port.welcomed()) this.sendSubscribe(entry)
    }
    return sub
  }

  private release(entry: Entry, sub: SubscriptionImpl): void {
    entry.subscriptions.delete(sub)
    if (entry.subscriptions.size > 0 || entry.mode !== "wanted") return
    // In line with the channel's deliveries: events already accepted finish (and are acked) first.
    entry.delivery.enqueue(() => {
      if (entry.subscriptions.size > 0 || entry.mode !== "wanted") return undefined
      if (this.port.welcomed()) {
        this.acks.flushNow()
        this.port.send({ type: "unsubscribe", channel: entry.state.channel })
      }
      entry.mode = "dropped"
      entry.subscribing = false
      entry.live = undefined
      return undefined
    })
  }

  // ---- the connection's side ---------------------------------------------------------------------------------

  /** A welcome: resubscribe every wanted channel from its last position, then send acks still due. */
  welcomed(): void {
    for (const entry of this.entries.values()) {
      if (entry.mode === "wanted") this.sendSubscribe(entry)
    }
    this.acks.flushNow()
  }

  /** The connection dropped: nothing is live or being subscribed until the next welcome. */
  lost(): void {
    for (const entry of this.entries.values()) {
      entry.subscribing = false
      entry.live = undefined
    }
  }

  /** Sends every ack due now (before a deliberate close). */
  flushAcks(): void {
    this.acks.flushNow()
  }

  /** The client closed: undelivered events are dropped and every pending `ready()` fails with `failure`. */
  close(failure: unknown): void {
    this.closed = true
    this.acks.cancel()
    for (const entry of this.entries.values()) {
      if (entry.retryTimer !== undefined) clearTimeout(entry.retryTimer)
      entry.delivery.clear()
      for (const sub of entry.subscriptions) sub.settle(undefined, failure)
    }
  }

  event(frame: EventFrame): void {
    const entry = this.entries.get(frame.channel) ?? this.create(frame.channel, "implicit")
    if (entry.mode === "dropped") return
    const verdict = entry.state.receive(frame.epoch, frame.offset)
    switch (verdict._tag) {
      case "Duplicate":
        return
      case "EpochChanged":
        this.reportReset(entry, "epoch_changed", verdict.position, verdict.previous)
        break
      case "Deliver":
        break
    }
    const meta: EventMeta = { channel: frame.channel, epoch: frame.epoch, offset: frame.offset, time: frame.time }
    entry.delivery.enqueue(() => this.deliver(entry, frame, meta))
  }

  subscribed(frame: {
    readonly channel: string
    readonly position: Position
    readonly recovered: boolean
    readonly replayed: number
  }): void {
    const entry = this.entries.get(frame.channel)
    if (entry === undefined || entry.mode === "dropped") return
    entry.subscribing = false
    const verdict = entry.state.subscribed(frame.position)
    if (verdict._tag === "EpochChanged") this.reportReset(entry, "epoch_changed", verdict.position, verdict.previous)
    const { channel, position, recovered, replayed } = frame
    entry.live = { channel, position, recovered, replayed }
    entry.retries = 0
    // An ack held back while the channel was being (re)subscribed: the server takes it from now on.
    const due = entry.state.takeAck()
    if (due !== undefined && due.epoch === position.epoch) {
      this.port.send({ type: "ack", channel, epoch: due.epoch, offset: due.offset })
    }
    for (const sub of entry.subscriptions) sub.settle(entry.live)
  }

  reset(frame: { readonly channel: string; readonly reason: ResetReason; readonly position: Position }): void {
    const entry = this.entries.get(frame.channel)
    if (entry === undefined || entry.mode === "dropped") return
    const previous = entry.state.reset(frame.position)
    this.reportReset(entry, frame.reason, frame.position, previous)
  }

  /**
   * An error frame naming `channel`: if it refuses our subscribe, stop asking for that channel — except
   * `unavailable` (the server cannot reach its broker now), which is asked again after a delay.
   */
  refused(channel: string, error: ServerError): void {
    const entry = this.entries.get(channel)
    if (entry === undefined || !entry.subscribing || !subscribeRefusals.has(error.code)) return
    entry.subscribing = false
    if (error.code === "unavailable") {
      if (entry.retryTimer !== undefined) clearTimeout(entry.retryTimer)
      entry.retryTimer = setTimeout(
        () => {
          entry.retryTimer = undefined
          if (!this.closed && entry.mode === "wanted" && !entry.subscribing && entry.live === undefined) {
            this.sendSubscribe(entry)
          }
        },
        retryDelayMs(++entry.retries)
      )
      return
    }
    entry.mode = "dropped"
    entry.refused = error
    for (const sub of entry.subscriptions) sub.settle(undefined, error)
  }

  // ---- internals ---------------------------------------------------------------------------------------------

  private create(channel: string, mode: Mode, since?: Position): Entry {
    const entry: Entry = {
      state: new ChannelState(channel, since),
      delivery: new Delivery(),
      subscriptions: new Set(),
      mode,
      subscribing: false,
      live: undefined,
      refused: undefined,
      fromStart: false,
      retries: 0,
      retryTimer: undefined
    }
    this.entries.set(channel, entry)
    return entry
  }

  private sendSubscribe(entry: Entry, since: Position | undefined = entry.state.position): void {
    if (!this.port.welcomed()) return
    entry.subscribing = true
    this.port.send({
      type: "subscribe",
      channel: entry.state.channel,
      ...(since !== undefined ? { since } : entry.fromStart ? { fromStart: true } : {})
    })
  }

  private deliver(entry: Entry, frame: EventFrame, meta: EventMeta): PromiseLike<void> | undefined {
    const decoded = this.decode(frame.event, frame.data)
    if (Result.isFailure(decoded)) {
      const p = decoded.failure
      this.port.issue(
        new ProtocolViolation({ message: `event "${frame.event}" on ${frame.channel}: ${p.message}`, path: p.path })
      )
      this.processed(entry, meta)
      return undefined
    }
    const event: ErasedEvent = { _tag: "Event", event: frame.event, data: decoded.success, meta }
    const { run, settled } = runner(this.port.issue)
    const handlers = this.handlers.get(frame.event)
    if (handlers !== undefined) {
      for (const h of [...handlers]) run(frame.channel, frame.event, () => h(event.data, meta))
    }
    for (const sub of [...entry.subscriptions]) sub.dispatch(event, run)
    const waiting = settled()
    if (waiting === undefined) {
      this.processed(entry, meta)
      return undefined
    }
    return waiting.then(() => this.processed(entry, meta))
  }

  private processed(entry: Entry, meta: EventMeta): void {
    if (this.closed) return
    entry.state.markProcessed({ epoch: meta.epoch, offset: meta.offset })
    this.acks.processed()
  }

  /** Tells the app, in order with the channel's events. */
  private reportReset(entry: Entry, reason: ResetReason, position: Position, previous: Position | undefined): void {
    const notice: ResetNotice = { _tag: "Reset", channel: entry.state.channel, reason, position, previous }
    entry.delivery.enqueue(() => {
      const { run, settled } = runner(this.port.issue)
      for (const h of [...this.resetListeners]) run(notice.channel, "reset", () => h(notice))
      for (const sub of [...entry.subscriptions]) sub.dispatchReset(notice, run)
      return settled()
    })
  }

  /**
   * Acks wait while disconnected, and for a wanted channel until its `subscribed` on the new connection (the
   * server refuses an ack for a subscription that is still replaying).
   */
  private sendAcks(): void {
    if (!this.port.welcomed()) return
    for (const entry of this.entries.values()) {
      if (entry.mode === "dropped" || (entry.mode === "wanted" && entry.live === undefined)) continue
      const p = entry.state.takeAck()
      if (p !== undefined)
        this.port.send({ type: "ack", channel: entry.state.channel, epoch: p.epoch, offset: p.offset })
    }
  }
}
