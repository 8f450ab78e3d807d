/**
 * Reconnect delays: exponential backoff with full jitter (a uniformly random delay between 0 and the
 * exponential ceiling), so that thousands of clients dropped at once do not come back in lock-step.
 *
 * Owns only the arithmetic and the attempt count; the client decides when to call `next` and `reset`.
 */

export interface BackoffOptions {
  /** Ceiling of the first delay. Default 250 ms. */
  readonly initialDelayMs?: number
  /** Largest ceiling. Default 30 000 ms. */
  readonly maxDelayMs?: number
  /** Growth of the ceiling per attempt. Default 2. */
  readonly factor?: number
  /** Attempts in a row before giving up (the client then closes with ReconnectExhausted). Default Infinity. */
  readonly maxAttempts?: number
}

export interface Backoff {
  /** Failed attempts since the last `reset`. */
  readonly attempts: number
  /** The delay before the next attempt, or undefined when `maxAttempts` is used up. Counts the attempt. */
  readonly next: () => number | undefined
  /** Call after a connection succeeded. */
  readonly reset: () => void
}

export const defaults = {
  initialDelayMs: 250,
  maxDelayMs: 30_000,
  factor: 2,
  maxAttempts: Number.POSITIVE_INFINITY
} as const

/** The ceiling of attempt `attempt` (1-based): `min(maxDelayMs, initialDelayMs * factor^(attempt - 1))`. */
export const ceiling = (attempt: number, options: BackoffOptions = {}): number => {
  const initial = options.initialDelayMs ?? defaults.initialDelayMs
  const max = options.maxDelayMs ?? defaults.maxDelayMs
  const factor = options.factor ?? defaults.factor
  return Math.min(max, initial * factor ** Math.max(0, attempt - 1))
}

/** `random` returns a number in [0, 1); inject it to make delays deterministic in tests. */
export const make = (options: BackoffOptions = {}, random: () => number = Math.random): Backoff => {
  const maxAttempts = options.maxAttempts ?? defaults.maxAttempts
  let attempts = 0
  return {
    get attempts() {
      return attempts
    },
    next: () => {
      if (attempts >= maxAttempts) return undefined
      attempts++
      return Math.floor(random() * ceiling(attempts, options))
    },
    reset: () => {
      attempts = 0
    }
  }
}
