/**
 * A Clock whose sleeps count the time the process ran, not the time it was stopped.
 *
 * A process that is paused (SIGSTOP, a frozen container or VM, a debugger) and resumed runs its due timers before
 * it reads its sockets. Every deadline that was running when it stopped therefore fires at once, even when the
 * answer it waited for arrived long ago and sits unread: a worker paused for 3 s with a shard-lock refresh in
 * flight timed the refresh out (Effect Cluster's deadline is at most a third of `shardLockExpiration`), replaced
 * its lock connection, which drops its advisory locks, and gave up every shard — interrupting its runs, waiting
 * out their steps, and executing them again (seen in test/runs/Chaos.test.ts on a loaded machine).
 *
 * Here a sleep of a second or more waits in steps of at most `TICK_MS`; a step that ends more than `PAUSE_MS`
 * late saw the process stopped (or its event loop blocked for that long) and counts nothing, so the deadline
 * fires at least one step after the process runs again, once what arrived meanwhile has been read. Shorter
 * sleeps (polls, backoffs) are plain timers. The time itself (`currentTimeMillis`) is the system's.
 */
import { Clock, Duration, Effect, Layer } from "effect"

/** Sleeps shorter than this are plain timers. */
const STEPPED_FROM_MS = 1000
const TICK_MS = 250
/** A step this much later than asked counts as a pause. */
const PAUSE_MS = 1000

const sleepRunning = (millis: number): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    let left = millis
    let handle: ReturnType<typeof setTimeout>
    const step = () => {
      const asked = Math.min(left, TICK_MS)
      const from = performance.now()
      handle = setTimeout(() => {
        const took = performance.now() - from
        if (took <= asked + PAUSE_MS) left -= asked
        if (left <= 0) resume(Effect.void)
        else step()
      }, asked)
    }
    step()
    return Effect.sync(() => clearTimeout(handle))
  })

/** `clock` with pause-aware sleeps. */
export const make = (clock: Clock.Clock): Clock.Clock => ({
  currentTimeMillisUnsafe: () => clock.currentTimeMillisUnsafe(),
  currentTimeMillis: clock.currentTimeMillis,
  currentTimeNanosUnsafe: () => clock.currentTimeNanosUnsafe(),
  currentTimeNanos: clock.currentTimeNanos,
  monotonicTimeNanosUnsafe: () => clock.monotonicTimeNanosUnsafe(),
  monotonicTimeNanos: clock.monotonicTimeNanos,
  sleep: (duration: Duration.Duration) => {
    const millis = Duration.toMillis(duration)
    return Number.isFinite(millis) && millis >= STEPPED_FROM_MS && millis < 2 ** 31
      ? sleepRunning(millis)
      : clock.sleep(duration)
  }
})

/** Pause-aware sleeps for whatever the layers it is provided to build and fork. */
export const layer: Layer.Layer<never> = Layer.effect(
  Clock.Clock,
  Clock.clockWith((clock) => Effect.succeed(make(clock)))
) as Layer.Layer<never>
