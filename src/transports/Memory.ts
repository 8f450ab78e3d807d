/**
 * The in-memory transport: one node's channel logs, live feed, idempotency cache and session cursors, held in
 * plain mutable structures inside the process.
 *
 * It is the default transport and the hot path of single-node fan-out, so an append is O(1) amortized: a ring
 * buffer per channel, no array copies, listeners called synchronously as plain functions. Time comes from the
 * calling fiber's `Clock` (so `TestClock` drives retention, cursor TTLs and the idempotency window). Nothing
 * survives the process: a restart creates new epochs, which clients see as a reset. It does not share state
 * between nodes; use Redis.ts or Nats.ts for that.
 */
import { Clock, Context, Effect, Layer } from "effect"
import type { Position } from "../protocol/Position.ts"
import * as MemoryPresence from "./presence/MemoryPresence.ts"
import {
  type Appended,
  type AppendOptions,
  type Entry,
  type Listener,
  type Publication,
  type ReadResult,
  type Retention,
  resolveOptions,
  Transport,
  type TransportOptions,
  type TransportShape
} from "./Transport.ts"

/** Hooks for tests that need to simulate what only a real backend can do (losing a log). Not part of the contract. */
export interface MemoryTransportTestingShape {
  /**
   * Forgets a channel's log as if its storage had been lost: its entries and epoch are dropped and the next
   * access creates a new epoch whose offsets restart at 1. Live listeners stay registered and see the new epoch.
   */
  readonly resetChannel: (channel: string) => Effect.Effect<void>
}

export class MemoryTransportTesting extends Context.Service<MemoryTransportTesting, MemoryTransportTestingShape>()(
  "tidings/transports/MemoryTransportTesting"
) {}

/** What `make` builds: the transport contract plus the testing hooks. */
export type MemoryTransport = TransportShape & MemoryTransportTestingShape

const initialCapacity = 16

/** One channel: its log (a power-of-two ring of entries with their storage times) and its live listeners. */
interface ChannelState {
  readonly retention: Retention
  epoch: string
  /** Offset of the newest entry (0 when nothing was ever appended in this epoch). */
  top: number
  /** Ring slot of the oldest retained entry. */
  head: number
  /** Number of retained entries; the oldest retained offset is `top - size + 1`. */
  size: number
  mask: number
  entries: Array<Entry | undefined>
  /** Transport-clock time each entry was stored, for age retention (parallel to `entries`). */
  storedAt: Float64Array
  /** Copy-on-write, so a listener added or removed during delivery never disturbs the loop in progress. */
  listeners: ReadonlyArray<Listener>
  /** Guards re-entrant appends from inside a listener so every listener still sees offsets in order. */
  delivering: boolean
  pending: Array<Entry>
}

interface CachedAppend {
  readonly entry: Entry
  readonly expiresAt: number
}

interface SessionCursors {
  readonly cursors: Map<string, Position>
  expiresAt: number
}

const newEpoch = (): string => globalThis.crypto.randomUUID()

const emptyLog = (state: ChannelState): void => {
  state.epoch = newEpoch()
  state.top = 0
  state.head = 0
  state.size = 0
  state.mask = initialCapacity - 1
  state.entries = new Array<Entry | undefined>(initialCapacity)
  state.storedAt = new Float64Array(initialCapacity)
}

const grow = (state: ChannelState): void => {
  const capacity = state.entries.length
  const entries = new Array<Entry | undefined>(capacity * 2)
  const storedAt = new Float64Array(capacity * 2)
  for (let i = 0; i < state.size; i++) {
    const slot = (state.head + i) & state.mask
    entries[i] = state.entries[slot]
    storedAt[i] = state.storedAt[slot]!
  }
  state.entries = entries
  state.storedAt = storedAt
  state.head = 0
  state.mask = capacity * 2 - 1
}

const dropOldest = (state: ChannelState): void => {
  state.entries[state.head] = undefined
  state.head = (state.head + 1) & state.mask
  state.size--
}

const trimByAge = (state: ChannelState, now: number): void => {
  const oldestKept = now - state.retention.maxAgeMs
  while (state.size > 0 && state.storedAt[state.head]! < oldestKept) dropOldest(state)
}

const keySeparator = "\u0000"

/**
 * Builds an in-memory transport. Every call makes an independent instance (its own channels, cursors and
 * idempotency cache).
 */
export const make = (options?: TransportOptions): Effect.Effect<MemoryTransport> =>
  Effect.sync(() => {
    const resolved = resolveOptions(options)
    const channels = new Map<string, ChannelState>()
    /** Keyed by channel + NUL + idempotency key; insertion order is expiry order, so purging pops from the front. */
    const appended = new Map<string, CachedAppend>()
    /** Re-inserted on every save, so insertion order is expiry order here too. */
    const sessions = new Map<string, SessionCursors>()
    let listenerFailures: Array<unknown> | undefined

    const channelState = (channel: string): ChannelState => {
      let state = channels.get(channel)
      if (state === undefined) {
        state = {
          retention: resolved.retention(channel),
          epoch: "",
          top: 0,
          head: 0,
          size: 0,
          mask: 0,
          entries: [],
          storedAt: new Float64Array(0),
          listeners: [],
          delivering: false,
          pending: []
        }
        emptyLog(state)
        channels.set(channel, state)
      }
      return state
    }

    const callListeners = (listeners: ReadonlyArray<Listener>, entry: Entry): void => {
      for (let i = 0; i < listeners.length; i++) {
        try {
          listeners[i]!(entry)
        } catch (error) {
          // A throwing listener breaks its own contract; it must not cost the others their delivery.
          ;(listenerFailures ??= []).push(error)
        }
      }
    }

    const deliver = (state: ChannelState, entry: Entry): void => {
      if (state.delivering) {
        state.pending.push(entry)
        return
      }
      state.delivering = true
      try {
        callListeners(state.listeners, entry)
        if (state.pending.length > 0) {
          for (let i = 0; i < state.pending.length; i++) callListeners(state.listeners, state.pending[i]!)
          state.pending.length = 0
        }
      } finally {
        state.delivering = false
      }
    }

    const purgeAppended = (now: number): void => {
      for (const [key, cached] of appended) {
        if (cached.expiresAt > now) return
        appended.delete(key)
      }
    }

    const appendUnsafe = (
      channel: string,
      publication: Publication,
      options: AppendOptions | undefined,
      now: number
    ): Appended => {
      const idempotencyKey = options?.idempotencyKey
      let cacheKey: string | undefined
      if (idempotencyKey !== undefined) {
        purgeAppended(now)
        cacheKey = channel + keySeparator + idempotencyKey
        const cached = appended.get(cacheKey)
        if (cached !== undefined && cached.expiresAt > now) return { ...cached.entry, duplicate: true }
      }
      const state = channelState(channel)
      const offset = state.top + 1
      const entry: Entry = {
        channel,
        epoch: state.epoch,
        offset,
        event: publication.event,
        data: publication.data,
        version: publication.version,
        time: publication.time
      }
      if (state.size === state.entries.length) grow(state)
      const slot = (state.head + state.size) & state.mask
      state.entries[slot] = entry
      state.storedAt[slot] = now
      state.size++
      state.top = offset
      while (state.size > state.retention.maxEntries) dropOldest(state)
      trimByAge(state, now)
      if (cacheKey !== undefined) {
        appended.set(cacheKey, { entry, expiresAt: now + resolved.idempotencyWindowMs })
      }
      if (state.listeners.length > 0) deliver(state, entry)
      return entry
    }

    const reportListenerFailures = (entry: Appended): Effect.Effect<Appended> => {
      const failures = listenerFailures!
      listenerFailures = undefined
      return Effect.as(
        Effect.logError(
          `tidings memory transport: ${failures.length} listener(s) threw on ${entry.channel}`,
          ...failures
        ),
        entry
      )
    }

    const append = (channel: string, publication: Publication, options?: AppendOptions) =>
      Effect.withFiber((fiber) => {
        const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
        const entry = appendUnsafe(channel, publication, options, now)
        return listenerFailures === undefined ? Effect.succeed(entry) : reportListenerFailures(entry)
      })

    const readUnsafe = (channel: string, since: Position | undefined, limit: number, now: number): ReadResult => {
      const state = channelState(channel)
      trimByAge(state, now)
      const top: Position = { epoch: state.epoch, offset: state.top }
      const firstRetained = state.top - state.size + 1
      let after: number
      if (since === undefined) {
        after = firstRetained - 1
      } else if (since.epoch !== state.epoch || since.offset > state.top) {
        // A position ahead of the top cannot come from this incarnation of the log: resuming from it would
        // silently skip the entries that will reuse its offsets.
        return { entries: [], top, covered: false, reason: "epoch_changed" }
      } else if (since.offset < firstRetained - 1) {
        return { entries: [], top, covered: false, reason: "trimmed" }
      } else {
        after = since.offset
      }
      const count = Math.min(state.top - after, limit > 0 ? Math.floor(limit) : 0)
      const entries = new Array<Entry>(count)
      const start = state.head + (after + 1 - firstRetained)
      for (let i = 0; i < count; i++) entries[i] = state.entries[(start + i) & state.mask]!
      return { entries, top, covered: true }
    }

    const saveCursorUnsafe = (session: string, channel: string, position: Position, now: number): void => {
      for (const [key, stored] of sessions) {
        if (stored.expiresAt > now) break
        sessions.delete(key)
      }
      let stored = sessions.get(session)
      if (stored === undefined) {
        stored = { cursors: new Map(), expiresAt: 0 }
      } else {
        sessions.delete(session)
      }
      stored.cursors.set(channel, { epoch: position.epoch, offset: position.offset })
      stored.expiresAt = now + resolved.cursorTtlMs
      sessions.set(session, stored)
    }

    const loadCursorsUnsafe = (session: string, now: number): ReadonlyMap<string, Position> => {
      const stored = sessions.get(session)
      if (stored === undefined) return new Map()
      if (stored.expiresAt <= now) {
        sessions.delete(session)
        return new Map()
      }
      return new Map(stored.cursors)
    }

    const transport: MemoryTransport = {
      name: "memory",
      append,
      read: (channel, since, limit) =>
        Effect.withFiber((fiber) =>
          Effect.succeed(readUnsafe(channel, since, limit, fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()))
        ),
      top: (channel) =>
        Effect.sync(() => {
          const state = channelState(channel)
          return { epoch: state.epoch, offset: state.top }
        }),
      listen: (channel, listener) =>
        Effect.asVoid(
          Effect.acquireRelease(
            Effect.sync(() => {
              const state = channelState(channel)
              state.listeners = [...state.listeners, listener]
              return state
            }),
            // `resetChannel` keeps the state object, so the registration is always found where it was added.
            (state) =>
              Effect.sync(() => {
                const index = state.listeners.indexOf(listener)
                if (index >= 0) state.listeners = state.listeners.filter((_, i) => i !== index)
              })
          )
        ),
      saveCursor: (session, channel, position) =>
        Effect.withFiber((fiber) =>
          Effect.succeed(
            saveCursorUnsafe(session, channel, position, fiber.getRef(Clock.Clock).currentTimeMillisUnsafe())
          )
        ),
      saveCursors: (writes) =>
        Effect.withFiber((fiber) => {
          const now = fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()
          for (const write of writes) saveCursorUnsafe(write.session, write.channel, write.position, now)
          return Effect.void
        }),
      loadCursors: (session) =>
        Effect.withFiber((fiber) =>
          Effect.succeed(loadCursorsUnsafe(session, fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()))
        ),
      healthy: Effect.succeed(true),
      presence: MemoryPresence.make(),
      resetChannel: (channel) =>
        Effect.sync(() => {
          const state = channels.get(channel)
          if (state !== undefined) emptyLog(state)
        })
    }
    return transport
  })

/** The in-memory transport as the `Transport` service. */
export const layer = (options?: TransportOptions): Layer.Layer<Transport> => Layer.effect(Transport, make(options))

/** The in-memory transport as both `Transport` and `MemoryTransportTesting`, sharing one instance. */
export const layerTesting = (options?: TransportOptions): Layer.Layer<Transport | MemoryTransportTesting> =>
  Layer.effectContext(
    Effect.map(make(options), (transport) =>
      Context.make(Transport, transport).pipe(Context.add(MemoryTransportTesting, transport))
    )
  )
