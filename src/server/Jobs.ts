/**
 * Long-running jobs started by commands (an agent run): each runs in its own fiber under the server's scope,
 * keyed by id, so a later command (`cancel`) can interrupt it. A job's own `onInterrupt` is where it publishes
 * its final "cancelled" event. Jobs end with the server.
 */
import { Effect, Fiber, FiberMap, Option } from "effect"

export interface Jobs {
  /** Starts `effect` under `id`; fails with false if a job with that id is running. */
  readonly start: <E>(id: string, effect: Effect.Effect<void, E>) => Effect.Effect<boolean>
  /** Interrupts the job and waits for its finalizers; false when no such job runs. */
  readonly cancel: (id: string) => Effect.Effect<boolean>
  readonly running: (id: string) => Effect.Effect<boolean>
  /** Interrupts every job and waits for their finalizers (server shutdown, before sockets close). */
  readonly interruptAll: Effect.Effect<void>
}

export const make = Effect.gen(function* () {
  const map = yield* FiberMap.make<string, void, unknown>()
  const jobs: Jobs = {
    start: (id, effect) =>
      Effect.gen(function* () {
        if (yield* FiberMap.has(map, id)) return false
        yield* FiberMap.run(
          map,
          id,
          effect.pipe(Effect.catchCause((cause) => Effect.logError(`job ${id} failed`, cause)))
        )
        return true
      }),
    cancel: (id) =>
      Effect.gen(function* () {
        const fiber = yield* FiberMap.get(map, id)
        if (Option.isNone(fiber)) return false
        // interrupt and wait, so the job's finalizers (its final "cancelled" event) ran before we answer
        yield* Fiber.interrupt(fiber.value)
        yield* FiberMap.remove(map, id)
        return true
      }),
    running: (id) => FiberMap.has(map, id),
    interruptAll: FiberMap.clear(map)
  }
  return jobs
})
