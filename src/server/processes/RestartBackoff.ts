/**
 * How long the supervisor waits before restarting a server process that exited on its own: the first restart
 * comes quickly, each further crash in a row doubles the wait up to a ceiling, so a process that cannot start
 * (a broken deployment, a broker refusing it) costs a restart every few seconds instead of a spinning loop. A
 * process that ran at least `stableAfterMs` before it crashed starts a new streak.
 *
 * Owns only the arithmetic; the supervisor keeps the streak per process and decides when to ask.
 */

export interface RestartBackoffOptions {
  /** Wait before the first restart of a streak. Default 100 ms. */
  readonly initialDelayMs?: number
  /** Longest wait. Default 10,000 ms. */
  readonly maxDelayMs?: number
  /** A process that lived at least this long before exiting starts a new streak. Default 10,000 ms. */
  readonly stableAfterMs?: number
}

export const defaults = { initialDelayMs: 100, maxDelayMs: 10_000, stableAfterMs: 10_000 } as const

/** The crashes-in-a-row count after a process that lived `livedMs` exited (`previous`: the count before). */
export const nextStreak = (previous: number, livedMs: number, options: RestartBackoffOptions = {}): number =>
  livedMs >= (options.stableAfterMs ?? defaults.stableAfterMs) ? 1 : previous + 1

/** The wait before restarting after the `streak`-th crash in a row (1-based). */
export const delayMs = (streak: number, options: RestartBackoffOptions = {}): number =>
  Math.min(
    options.maxDelayMs ?? defaults.maxDelayMs,
    (options.initialDelayMs ?? defaults.initialDelayMs) * 2 ** Math.max(0, streak - 1)
  )
