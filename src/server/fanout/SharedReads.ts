/**
 * History reads shared between subscriptions on one node: while a read of a page (channel, position, limit) is in
 * flight, another subscription asking for the same page waits for it instead of asking the transport again.
 *
 * In a reconnect storm every client of a channel resumes from about the same position, so a thousand replays
 * would otherwise send a thousand identical reads to Redis or JetStream at once — enough to push the broker past
 * its command timeout and turn a recoverable storm into `unavailable` errors. A shared result is what a read
 * started a moment earlier returns: the same entries, and a top that the replay loop and the live feed already
 * treat as possibly behind. Nothing is kept once the read completes.
 */
import { Cause, Deferred, Effect, Exit } from "effect"
import type { Position } from "../../protocol/Position.ts"
import type { ReadResult, TransportError, TransportShape } from "../../transports/Transport.ts"

export type Read = (
  channel: string,
  after: Position | undefined,
  limit: number
) => Effect.Effect<ReadResult, TransportError>

export const make = (transport: TransportShape): Read => {
  const inFlight = new Map<string, Deferred.Deferred<ReadResult, TransportError>>()
  const read: Read = (channel, after, limit) =>
    Effect.suspend(() => {
      const key = `${limit}\u0000${after ? `${after.epoch}\u0000${after.offset}` : "start"}\u0000${channel}`
      const pending = inFlight.get(key)
      if (pending) {
        return Deferred.await(pending).pipe(
          Effect.exit,
          // the reader it waited for was interrupted (its client went away): read for itself
          Effect.flatMap((exit) =>
            Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? read(channel, after, limit) : exit
          )
        )
      }
      const deferred = Deferred.makeUnsafe<ReadResult, TransportError>()
      inFlight.set(key, deferred)
      return transport.read(channel, after, limit).pipe(
        Effect.onExit((exit) =>
          Effect.sync(() => {
            if (inFlight.get(key) === deferred) inFlight.delete(key)
            Deferred.doneUnsafe(deferred, exit)
          })
        )
      )
    })
  return read
}
