/**
 * A connection's positions for its session: the positions its client acked, each saved to the transport once it
 * changed (on the server's cursor-flush tick and at close), and for a resumed session the positions its earlier
 * connections saved, where a subscribe without `since` starts. Made at the first ack or when a session resumes:
 * most connections never need one, and an idle connection's memory is counted in bytes (docs/performance.md).
 */
import { Deferred, Effect } from "effect"
import type { Position } from "../../protocol/Position.ts"
import type { CursorWrite, TransportError, TransportShape } from "../../transports/Transport.ts"

const NONE: ReadonlyMap<string, Position> = new Map()

export class SessionCursors {
  /** The highest ack per channel and whether it still has to be saved. */
  private readonly acks = new Map<string, { position: Position; dirty: boolean }>()
  private dirty = 0
  /** What the session's earlier connections saved (filled by `restore`). */
  private saved: ReadonlyMap<string, Position> = NONE
  /** Completes once a resumed session's saved positions are loaded (at once otherwise). */
  loaded: Effect.Effect<void> = Effect.void

  restore(saved: ReadonlyMap<string, Position>): void {
    this.saved = saved
  }

  /**
   * Starts loading what the session `key` saved (`fork` runs it; `loaded` completes when it is done, failed or
   * not); a failure is reported to `onFailure` and leaves subscriptions without a position starting live.
   */
  load(
    key: string,
    transport: TransportShape,
    fork: (effect: Effect.Effect<void>) => unknown,
    onFailure: (error: TransportError) => void
  ): void {
    const loaded = Deferred.makeUnsafe<void>()
    this.loaded = Deferred.await(loaded)
    fork(
      transport
        .loadCursors(key)
        .pipe(
          Effect.match({ onFailure, onSuccess: (saved) => this.restore(saved) }),
          Effect.ensuring(Deferred.succeed(loaded, undefined))
        )
    )
  }

  /** Where a subscription to `channel` without an explicit position resumes, if the session saved one. */
  savedPosition(channel: string): Position | undefined {
    return this.saved.get(channel)
  }

  /** Records an ack; a position at or below the channel's previous ack in the same epoch changes nothing. */
  ack(channel: string, position: Position): void {
    const previous = this.acks.get(channel)
    if (previous) {
      if (previous.position.epoch === position.epoch && previous.position.offset >= position.offset) return
      previous.position = position
      if (!previous.dirty) this.dirty++
      previous.dirty = true
      return
    }
    this.acks.set(channel, { position, dirty: true })
    this.dirty++
  }

  /** Moves the acks that changed since the last call, as writes under the session's `key`, into `into`. */
  takeWrites(key: string, into: Array<CursorWrite>): void {
    if (this.dirty === 0) return
    for (const [channel, ack] of this.acks) {
      if (!ack.dirty) continue
      ack.dirty = false
      into.push({ session: key, channel, position: ack.position })
    }
    this.dirty = 0
  }
}
