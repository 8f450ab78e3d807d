/**
 * Waiting with a deadline that holds. `Effect.timeout` interrupts what it waits for and waits for the interruption
 * to finish, so a call that cannot be interrupted (a query to a database that stopped answering: seen here, a
 * 1 s timeout returned after 6 s) keeps its caller waiting. `withDeadline` runs the call in a fiber of its own and
 * stops waiting at the deadline; the call is told to stop and ends in the background.
 */
import { Duration, Effect, Fiber } from "effect"

export const withDeadline = <A, E, R, A2, E2>(
  effect: Effect.Effect<A, E, R>,
  ms: number,
  onTimeout: () => Effect.Effect<A2, E2>
): Effect.Effect<A | A2, E | E2, R> =>
  Effect.flatMap(Effect.forkDetach(effect), (fiber) =>
    Fiber.join(fiber).pipe(
      Effect.timeoutOrElse({
        duration: Duration.millis(ms),
        orElse: () =>
          Effect.andThen(
            Effect.sync(() => fiber.interruptUnsafe()),
            onTimeout()
          )
      }),
      Effect.onInterrupt(() => Effect.sync(() => fiber.interruptUnsafe()))
    )
  )
