import { Effect } from "effect"

/** Polls `check` every 10 ms until it holds or `timeoutMs` passes; resolves to its last answer. */
export const until = async (check: () => boolean, timeoutMs = 2000): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  return check()
}

/** The same as an Effect that fails the test, naming `what`, if `check` does not hold within `timeoutMs`. */
export const eventually = (what: string, check: () => boolean, timeoutMs = 3000): Effect.Effect<void> =>
  Effect.flatMap(
    Effect.promise(() => until(check, timeoutMs)),
    (held) => (held ? Effect.void : Effect.die(new Error(`not within ${timeoutMs} ms: ${what}`)))
  )
