/**
 * The replay-frame cache: values by (channel, epoch, offset), streams kept apart, and bounded — entries older than
 * two half-capacity generations are gone, recent ones stay.
 */
import { describe, expect, it } from "@effect/vitest"
import { ReplayFrameCache } from "../../src/server/fanout/ReplayFrameCache.ts"

describe("ReplayFrameCache", () => {
  it("keeps streams apart and finds what was set", () => {
    const cache = new ReplayFrameCache<string>(100)
    cache.set("a", "e1", 1, "a/e1/1")
    cache.set("a", "e2", 1, "a/e2/1")
    cache.set("b", "e1", 1, "b/e1/1")
    cache.set("a", "e1", 2, "a/e1/2")
    expect(cache.get("a", "e1", 1)).toBe("a/e1/1")
    expect(cache.get("a", "e2", 1)).toBe("a/e2/1")
    expect(cache.get("b", "e1", 1)).toBe("b/e1/1")
    expect(cache.get("a", "e1", 2)).toBe("a/e1/2")
    expect(cache.get("b", "e1", 2)).toBeUndefined()
    // a channel whose name ends where another's epoch begins is still another stream
    cache.set("a\u0000e", "1", 1, "tricky")
    expect(cache.get("a", "e1", 1)).toBe("a/e1/1")
  })

  it("drops the oldest generation once two half-capacity generations are full", () => {
    const cache = new ReplayFrameCache<number>(10)
    for (let offset = 1; offset <= 15; offset++) cache.set("c", "e", offset, offset)
    // generations of 5: [1-5] dropped, [6-10] old, [11-15] young
    expect(cache.get("c", "e", 5)).toBeUndefined()
    expect(cache.get("c", "e", 6)).toBe(6)
    expect(cache.get("c", "e", 15)).toBe(15)
  })
})
