/**
 * Which keys' TTLs this node set lately, so that a save following within seconds can skip its PEXPIRE. A key TTL
 * of the Redis transport is garbage collection, set a grace period past the logical expiry stored with the data;
 * a TTL set at most `maxAgeMs` ago (well under that grace) still outlives any logical expiry written since, so
 * a session that acks every second needs one PEXPIRE per `maxAgeMs`, not one per save.
 *
 * Keys live in two generations of a third of `maxAgeMs` each: a key counts as fresh for less than `maxAgeMs`
 * after it was recorded, never longer, and memory holds only the keys recorded in the last `maxAgeMs`. Real time
 * (`Date.now`), not the node's Clock: Redis counts TTLs in its own real time.
 */
export class TtlRefreshes {
  private current = new Set<string>()
  private previous = new Set<string>()
  private rotatedAt: number
  private readonly period: number

  constructor(
    maxAgeMs: number,
    private readonly now: () => number = Date.now
  ) {
    this.period = maxAgeMs / 3
    this.rotatedAt = now()
  }

  /** Whether `key`'s TTL was recorded as set less than `maxAgeMs` ago. */
  fresh(key: string): boolean {
    this.rotate()
    return this.current.has(key) || this.previous.has(key)
  }

  /** Records that `key`'s TTL was set (call it once Redis confirmed). */
  refreshed(key: string): void {
    this.rotate()
    this.current.add(key)
  }

  /**
   * A key in `current` was recorded less than one period ago; one in `previous` less than three (previous is
   * dropped when its successor is two periods old, and replaced once one more has passed).
   */
  private rotate(): void {
    const now = this.now()
    const elapsed = now - this.rotatedAt
    if (elapsed < this.period) return
    this.previous = elapsed < 2 * this.period ? this.current : new Set()
    this.current = new Set()
    this.rotatedAt = now
  }
}
