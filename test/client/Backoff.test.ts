/**
 * Backoff arithmetic: exponential ceilings, full jitter, the attempt limit and reset.
 */
import { describe, expect, it } from "vitest"
import * as Backoff from "../../src/client/Backoff.ts"

describe("Backoff", () => {
  it("grows the ceiling exponentially up to maxDelayMs", () => {
    const options = { initialDelayMs: 100, maxDelayMs: 1_000, factor: 2 }
    expect([1, 2, 3, 4, 5, 6].map((n) => Backoff.ceiling(n, options))).toEqual([100, 200, 400, 800, 1_000, 1_000])
  })

  it("draws each delay uniformly below the ceiling (full jitter)", () => {
    const top = Backoff.make({ initialDelayMs: 100 }, () => 0.999_999)
    expect([top.next(), top.next(), top.next()]).toEqual([99, 199, 399])
    const bottom = Backoff.make({ initialDelayMs: 100 }, () => 0)
    expect([bottom.next(), bottom.next()]).toEqual([0, 0])
  })

  it("stops after maxAttempts and starts over after reset", () => {
    const b = Backoff.make({ maxAttempts: 2 }, () => 0.5)
    expect(b.next()).toBeTypeOf("number")
    expect(b.next()).toBeTypeOf("number")
    expect(b.next()).toBeUndefined()
    expect(b.attempts).toBe(2)
    b.reset()
    expect(b.next()).toBe(125)
  })
})
