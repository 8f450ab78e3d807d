/**
 * How a run's own writes survive a broker or database that is down for a while: retried with backoff while the
 * failure is retryable, up to a deadline, then a defect that fails the run. Retrying is safe because every write
 * a run makes is keyed (an idempotency key per publication, a conditional move per directory change).
 */
import { Duration, Effect, Schedule } from "effect"

/** How long a run keeps retrying one write before it gives up and fails (default 60 s). */
export const DEFAULT_RETRY_MS = 60_000

/** Retries `effect` while `retryable(error)`, backing off from 50 ms to 2 s, for up to `retryMs`; then dies. */
export const durably = <A, E, R>(
  what: string,
  effect: Effect.Effect<A, E, R>,
  retryable: (error: E) => boolean,
  retryMs: number = DEFAULT_RETRY_MS
): Effect.Effect<A, never, R> =>
  effect.pipe(
    Effect.retry({
      while: retryable,
      schedule: Schedule.min([Schedule.exponential(Duration.millis(50), 2), Schedule.spaced(Duration.seconds(2))]).pipe(
        Schedule.upTo({ duration: Duration.millis(retryMs) })
      )
    }),
    Effect.mapError((error) => new Error(`${what} failed: ${message(error)}`)),
    Effect.orDie
  )

const message = (error: unknown): string =>
  typeof error === "object" && error !== null && "message" in error && typeof error.message === "string"
    ? error.message
    : String(error)
