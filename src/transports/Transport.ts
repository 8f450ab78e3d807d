/**
 * The transport contract: where channel logs live and how their entries reach every server node.
 *
 * A transport owns, per channel, a sequenced log (positions `{epoch, offset}`, offsets contiguous from 1 within
 * an epoch), its retention, a live feed of new entries in order, and a session-cursor store. It knows nothing of
 * sockets, protocols or versions: a publication's `data` is opaque JSON text. Implementations: Memory.ts
 * (default, one node), Redis.ts and Nats.ts (many nodes). Every implementation passes
 * test/transports/TransportSuite.ts unchanged.
 */
import { Context, Effect, type Scope } from "effect"
import type { Position } from "../protocol/Position.ts"
import type { PresenceStore } from "./presence/PresenceStore.ts"
import { TransportError } from "./TransportError.ts"

/** What a publisher hands over: an event name, its data as JSON text, and the protocol version it is in. */
export interface Publication {
  readonly event: string
  /** JSON text of the event's data, encoded in protocol version `version`. */
  readonly data: string
  readonly version: number
  /** Milliseconds since the Unix epoch, from the publisher's Clock. */
  readonly time: number
}

/** A publication with the position its transport assigned. */
export interface Entry extends Publication {
  readonly channel: string
  readonly epoch: string
  readonly offset: number
}

/**
 * What `append` returns: the entry as stored. `duplicate` is set when the append's idempotency key matched an
 * earlier append within the window: nothing was appended, and the entry is that earlier append's (its data and
 * time, not the retry's). Publishers that re-run work (a run's re-executed step) read it to learn what the log
 * already holds.
 */
export interface Appended extends Entry {
  readonly duplicate?: true
}

export interface Retention {
  /** Keep at most this many entries per channel (oldest trimmed first). */
  readonly maxEntries: number
  /** Drop entries older than this many milliseconds. */
  readonly maxAgeMs: number
}

export const defaultRetention: Retention = { maxEntries: 10_000, maxAgeMs: 24 * 60 * 60 * 1000 }

export interface ReadResult {
  /** Entries after the requested position, oldest first, at most `limit`. */
  readonly entries: ReadonlyArray<Entry>
  /** The channel's current top: its epoch and the offset of its newest entry (0 if empty). */
  readonly top: Position
  /**
   * Whether the requested position is still covered: same epoch as the channel and nothing between it and the
   * first returned entry was trimmed. When false, `entries` is empty and the caller must reset.
   */
  readonly covered: boolean
  /** When not covered, why. */
  readonly reason?: "trimmed" | "epoch_changed"
}

export interface AppendOptions {
  /**
   * A retried append with the same key (within the transport's idempotency window) returns the position of
   * the first append instead of appending again.
   */
  readonly idempotencyKey?: string
}

export { TransportError }

/** A live-feed listener. Called in offset order, never concurrently for one channel; must not throw. */
export type Listener = (entry: Entry) => void

/** One session's acknowledged position in one channel, to store (`saveCursors`). */
export interface CursorWrite {
  readonly session: string
  readonly channel: string
  readonly position: Position
}

export interface TransportShape {
  /** A name for logs and metrics: "memory", "redis", "nats". */
  readonly name: string

  /**
   * Appends one publication to a channel. Atomically per channel: assigns the next contiguous offset in the
   * current epoch (creating the channel and its epoch if missing), stores the entry, applies retention, and
   * makes the entry visible to live listeners on every node, in offset order. History and the live feed never
   * disagree: a listener never sees an offset that `read` cannot return while it is retained.
   * Fails with a retryable TransportError when the backing server is unreachable; never drops silently.
   * A failure after a timeout or a dropped connection may still have been applied: publishers that retry
   * should pass an `idempotencyKey` (scoped per channel) so the retry returns the first append's entry.
   */
  readonly append: (
    channel: string,
    publication: Publication,
    options?: AppendOptions
  ) => Effect.Effect<Appended, TransportError>

  /**
   * Reads entries after `since` (exclusive), oldest first, at most `limit`. `since` undefined reads from the
   * oldest retained entry. A position from another epoch, or one whose successor was trimmed, is not covered.
   * A position ahead of the top in the same epoch was never issued: not covered, reason "epoch_changed" (the
   * server answers it with `reset {reason: "unknown_position"}`).
   */
  readonly read: (
    channel: string,
    since: Position | undefined,
    limit: number
  ) => Effect.Effect<ReadResult, TransportError>

  /**
   * Pages a catch-up reads ahead of the one it is sending (default 1; 0: none). A broker that takes longer to
   * answer a read than the server takes to send a page gains from more, one that reads ahead by itself needs none.
   */
  readonly readAhead?: number

  /** The channel's current top position (epoch and newest offset, 0 if empty); creates the epoch if missing. */
  readonly top: (channel: string) => Effect.Effect<Position, TransportError>

  /**
   * Registers a live listener for a channel for the lifetime of the scope. The listener receives every entry
   * appended after registration completes, in offset order, with no gap: a transport that can miss
   * announcements (a dropped connection) fills the gap from history before delivering further. An entry with a
   * new epoch means the log was lost and restarted; the caller resets its subscribers. If the missed entries
   * were trimmed before they could be filled (an outage longer than retention), the next entry's offset jumps:
   * the caller treats a jump like a trim and resets its subscribers (reason "trimmed").
   */
  readonly listen: (channel: string, listener: Listener) => Effect.Effect<void, TransportError, Scope.Scope>

  /** Stores a session's acknowledged position in a channel (kept for `cursorTtlMs`). Last write wins. */
  readonly saveCursor: (session: string, channel: string, position: Position) => Effect.Effect<void, TransportError>

  /**
   * Stores several sessions' positions at once, each as `saveCursor` would (a server saves the acks of many
   * connections together: one round trip to the broker instead of one per connection). In order: of two writes
   * for one session and channel, the later wins — within one call, and across calls in the order they were made
   * (the writes of a call leave for the broker when it starts). Optional: without it a server calls `saveCursor`
   * once per write (see `saveCursors` below).
   */
  readonly saveCursors?: (writes: ReadonlyArray<CursorWrite>) => Effect.Effect<void, TransportError>

  /** A session's acknowledged positions, by channel; empty when unknown or expired. */
  readonly loadCursors: (session: string) => Effect.Effect<ReadonlyMap<string, Position>, TransportError>

  /** Whether the backing server is reachable now; drives readiness. */
  readonly healthy: Effect.Effect<boolean>

  /**
   * Where presence lives (who is subscribed to a channel, seen from every node; presence/PresenceStore.ts). Every
   * transport of this package has one; a server configured with presence refuses a transport without it.
   */
  readonly presence?: PresenceStore
}

export class Transport extends Context.Service<Transport, TransportShape>()("tidings/transports/Transport") {}

/**
 * Options every transport accepts. Ages and windows are measured with the caller's Effect `Clock` (so tests
 * can use TestClock) from when the transport stored the entry.
 */
export interface TransportOptions {
  /** Retention for a channel; defaults to `defaultRetention` for every channel. */
  readonly retention?: (channel: string) => Retention
  /** How long session cursors are kept after their last write, in milliseconds (default 24 h). */
  readonly cursorTtlMs?: number
  /** How long an idempotency key is remembered, in milliseconds (default 2 min). */
  readonly idempotencyWindowMs?: number
}

export const resolveOptions = (options: TransportOptions | undefined) => ({
  retention: options?.retention ?? (() => defaultRetention),
  cursorTtlMs: options?.cursorTtlMs ?? 24 * 60 * 60 * 1000,
  idempotencyWindowMs: options?.idempotencyWindowMs ?? 2 * 60 * 1000
})

/** Saves `writes` through the transport's `saveCursors`, or one `saveCursor` each when it has none. */
export const saveCursors = (
  transport: TransportShape,
  writes: ReadonlyArray<CursorWrite>
): Effect.Effect<void, TransportError> =>
  transport.saveCursors
    ? transport.saveCursors(writes)
    : Effect.forEach(writes, (w) => transport.saveCursor(w.session, w.channel, w.position), {
        concurrency: "unbounded",
        discard: true
      })
