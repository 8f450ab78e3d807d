/**
 * A subscription's catch-up: from its start position (one it names, a saved cursor, or the channel's start) up to
 * the live feed, page by page through the transport, with the next pages read while one is sent, each page paced
 * by the socket (replay never trips the slow-consumer bound on its own), shared reads between subscriptions, and a
 * reset — said plainly — when history no longer covers the position.
 */
import { Effect, Fiber } from "effect"
import type { ResetReason } from "../../protocol/Frames.ts"
import { type Position, equals as samePosition } from "../../protocol/Position.ts"
import type { ReadResult, TransportError, TransportShape } from "../../transports/Transport.ts"
import type { Hub, Read, Subscription } from "../fanout/index.ts"
import type { Limits } from "../Options.ts"
import type { Outbound } from "../outbound/index.ts"
import type { Stats } from "../Stats.ts"

const REPLAY_PAGE = 1000

/** A page a catch-up reads ahead: the position it was read after, and the read. */
interface Ahead {
  readonly after: Position
  readonly fiber: Fiber.Fiber<ReadResult, TransportError>
}

/** The connection a catch-up writes for. */
export interface CatchUpHost {
  readonly outbound: Outbound
  readonly closed: boolean
  superseded(subscription: Subscription): boolean
  sendReset(channel: string, reason: ResetReason, position: Position): void
}

/** What a catch-up reads with and reports to. */
export interface CatchUpEnv {
  readonly transport: TransportShape
  readonly hub: Hub
  readonly read: Read
  readonly limits: Limits
  readonly stats: Stats
}

/** Replays what came after `start` (paged, waiting for the socket to drain between pages). */
export const catchUp = (
  host: CatchUpHost,
  env: CatchUpEnv,
  subscription: Subscription,
  start: Position | "start" | undefined
): Effect.Effect<{ recovered: boolean; replayed: number }, TransportError> => {
  const { transport, hub } = env
  const { channel } = subscription
  if (!start) {
    return transport.top(channel).pipe(
      Effect.map((top) => {
        subscription.startAt(top)
        return { recovered: false, replayed: 0 }
      })
    )
  }
  return Effect.suspend(() => {
    hub.replayStarted(channel)
    return replay(host, env, subscription, start).pipe(Effect.ensuring(Effect.sync(() => hub.replayEnded(channel))))
  })
}

/** The replay loop of catchUp. */
const replay = (
  host: CatchUpHost,
  env: CatchUpEnv,
  subscription: Subscription,
  start: Position | "start"
): Effect.Effect<{ recovered: boolean; replayed: number }, TransportError> => {
  const { transport, limits, stats } = env
  const { channel } = subscription
  /**
   * The next pages (transport.readAhead of them), read while this one is encoded and sent: the transport and the
   * server then work at the same time instead of in turn.
   */
  let aheads: Array<Ahead> = []
  const dropAhead = Effect.suspend(() => {
    const fibers = aheads.map((a) => a.fiber)
    aheads = []
    return fibers.length > 0 ? Fiber.interruptAll(fibers) : Effect.void
  })
  const depth = transport.readAhead ?? 1
  return Effect.gen(function* () {
    let position: Position | undefined = start === "start" ? undefined : start
    let replayed = 0
    /** Re-reads left for entries between the replayed ones and the first live one (see below). */
    let freshReads = 2
    let fresh = false
    for (;;) {
      let page: ReadResult
      const ahead = aheads[0]
      if (ahead && !fresh && position && samePosition(ahead.after, position)) {
        page = yield* Fiber.join(ahead.fiber)
        aheads.shift()
      } else {
        yield* dropAhead
        page = yield* (fresh ? transport.read : env.read)(channel, position, REPLAY_PAGE)
      }
      if (position === undefined) {
        // from the start: begin just before the oldest retained entry
        position = { epoch: page.top.epoch, offset: (page.entries[0]?.offset ?? page.top.offset + 1) - 1 }
      }
      // a position ahead of the channel's top was never issued by this log: forged or from a lost stream
      const reason: ResetReason | undefined =
        position.epoch === page.top.epoch && position.offset > page.top.offset
          ? "unknown_position"
          : !page.covered
            ? (page.reason ?? "trimmed")
            : replayed === 0 && page.top.offset - position.offset > limits.maxReplayEntries
              ? "trimmed"
              : undefined
      if (reason) {
        // resume from the top; anything already replayed stays delivered and is followed by the reset
        host.sendReset(channel, reason, page.top)
        stats.bump(stats.resets, reason)
        subscription.startAt(page.top)
        return { recovered: false, replayed }
      }
      if (replayed === 0) subscription.startAt(position)
      const last = page.entries[page.entries.length - 1]
      if (last !== undefined && page.entries.length === REPLAY_PAGE && last.offset < page.top.offset) {
        // offsets are contiguous: page k after this one starts after last.offset + k × REPLAY_PAGE
        const next: Array<Ahead> = []
        for (let k = 0; k < depth && last.offset + k * REPLAY_PAGE < page.top.offset; k++) {
          const after = { epoch: last.epoch, offset: last.offset + k * REPLAY_PAGE }
          const queued = aheads.find((a) => samePosition(a.after, after))
          next.push(queued ?? { after, fiber: yield* Effect.forkChild(env.read(channel, after, REPLAY_PAGE)) })
        }
        const stale = aheads.filter((a) => !next.includes(a)).map((a) => a.fiber)
        aheads = next
        if (stale.length > 0) yield* Fiber.interruptAll(stale)
      }
      const half = limits.maxOutboundBytes / 2
      for (const entry of page.entries) {
        if (host.superseded(subscription)) return { recovered: false, replayed }
        subscription.replay(env.hub.framesFor(entry))
        // replay is paced by the socket: it must never trip the slow-consumer bound on its own
        if (host.outbound.buffered > half) yield* drained(host, half)
      }
      replayed += page.entries.length
      if (!last || last.offset >= page.top.offset || page.entries.length < REPLAY_PAGE) {
        // a shared or read-ahead page can carry a top from just before this subscription joined the live feed:
        // entries appended in between are in neither, so read them before going live (not a reset)
        if (!subscription.missingBeforeLive() || freshReads-- === 0) return { recovered: true, replayed }
        fresh = true
      }
      position = { epoch: subscription.epoch, offset: subscription.offset }
      // this page goes out (the flush pass runs first) before the next one is encoded
      yield* Effect.yieldNow
    }
  }).pipe(Effect.ensuring(dropAhead))
}

/** Waits until the outbound buffer is below `half` its bound (replay must not trip the slow-consumer close). */
const drained = (host: CatchUpHost, half: number): Effect.Effect<void> =>
  Effect.gen(function* () {
    while (!host.closed && host.outbound.buffered > half) yield* Effect.sleep("1 millis")
  })
