/**
 * Pause-aware sleeps (src/runs/PauseAwareClock.ts): a sleep of a second or more does not count time the process
 * did not run (simulated by blocking the event loop for 2 s), while short sleeps and unpaused sleeps keep their
 * length.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as PauseAwareClock from "../../src/runs/PauseAwareClock.ts"

/** Blocks the event loop, as a stopped process would look once it runs again. */
const blockFor = (ms: number) => {
  const until = performance.now() + ms
  while (performance.now() < until) {}
}

const timed = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const from = performance.now()
    yield* effect
    return performance.now() - from
  })

describe("pause-aware clock", () => {
  it.live("a 1.5 s sleep lasts 1.5 s of running time: a 2 s pause in the middle does not count", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.forkChild(Effect.provide(timed(Effect.sleep(1500)), PauseAwareClock.layer))
      setTimeout(() => blockFor(2000), 600)
      const elapsed = yield* Fiber.join(fiber)
      // plain timers would end right after the pause (about 2.6 s); here at least ~1 s of sleep is left then
      expect(elapsed).toBeGreaterThan(3200)
    })
  )

  it.live("without a pause, sleeps keep their length; short sleeps are plain timers", () =>
    Effect.gen(function* () {
      const long = yield* Effect.provide(timed(Effect.sleep(1200)), PauseAwareClock.layer)
      expect(long).toBeGreaterThanOrEqual(1195)
      expect(long).toBeLessThan(1600)
      const short = yield* Effect.provide(timed(Effect.sleep(50)), PauseAwareClock.layer)
      expect(short).toBeGreaterThanOrEqual(45)
      expect(short).toBeLessThan(400)
    })
  )
})
