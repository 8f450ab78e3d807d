/**
 * TtlRefreshes (src/transports/redis/TtlRefreshes.ts) on a hand-driven clock: a key is never fresh once
 * `maxAgeMs` has passed since it was recorded, whatever the pattern of calls, and is fresh for at least a third
 * of it, so a session saving every second skips almost every PEXPIRE.
 */
import { describe, expect, it } from "vitest"
import { TtlRefreshes } from "../../src/transports/redis/TtlRefreshes.ts"

const MAX_AGE = 30_000

describe("TtlRefreshes", () => {
  it("is fresh after a refresh, not before, and not after maxAgeMs", () => {
    let now = 1_000_000
    const ttls = new TtlRefreshes(MAX_AGE, () => now)
    expect(ttls.fresh("a")).toBe(false)
    ttls.refreshed("a")
    expect(ttls.fresh("a")).toBe(true)
    expect(ttls.fresh("b")).toBe(false)
    now += MAX_AGE / 3 - 1
    expect(ttls.fresh("a")).toBe(true)
    now += MAX_AGE
    expect(ttls.fresh("a")).toBe(false)
  })

  it("a key saved every second gets one refresh per 10 to 30 s", () => {
    let now = 0
    const ttls = new TtlRefreshes(MAX_AGE, () => now)
    const refreshedAt: Array<number> = []
    for (; now <= 300_000; now += 1000) {
      if (!ttls.fresh("s")) {
        ttls.refreshed("s")
        refreshedAt.push(now)
      }
    }
    const gaps = refreshedAt.slice(1).map((t, i) => t - refreshedAt[i]!)
    expect(refreshedAt.length).toBeLessThanOrEqual(300 / 10 + 1)
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(MAX_AGE / 3)
      expect(gap).toBeLessThanOrEqual(MAX_AGE)
    }
  })

  it("never calls a key fresh maxAgeMs or more after its last refresh, over random schedules", () => {
    let seed = 42
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
      return seed / 2 ** 31
    }
    for (let run = 0; run < 50; run++) {
      let now = Math.floor(random() * 1e6)
      const ttls = new TtlRefreshes(MAX_AGE, () => now)
      const last = new Map<string, number>()
      for (let step = 0; step < 2000; step++) {
        // steps from 1 ms to 70 s: sparse and dense calls, rotations skipped or not
        now += Math.floor(random() ** 3 * 70_000) + 1
        const key = `k${Math.floor(random() * 20)}`
        const fresh = ttls.fresh(key)
        const at = last.get(key)
        if (fresh) {
          expect(at, `${key} fresh without a refresh`).toBeDefined()
          expect(now - at!, `${key} called fresh ${now - at!} ms after its refresh`).toBeLessThan(MAX_AGE)
        } else if (random() < 0.8) {
          ttls.refreshed(key)
          last.set(key, now)
        }
      }
    }
  })
})
