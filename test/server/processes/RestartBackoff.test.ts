/**
 * The supervisor's restart waits: quick at first, doubling while a process keeps exiting soon after its start,
 * capped, and back to quick once a process ran long enough before it exited.
 */
import { describe, expect, it } from "vitest"
import { delayMs, nextStreak } from "../../../src/server/processes/RestartBackoff.ts"

describe("RestartBackoff", () => {
  it("doubles the wait for each crash in a row, up to the ceiling", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9].map((streak) => delayMs(streak))).toEqual([
      100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000
    ])
    expect(delayMs(3, { initialDelayMs: 50, maxDelayMs: 150 })).toBe(150)
  })

  it("counts a crash soon after a start as one more in a row, and one after a stable run as the first", () => {
    expect(nextStreak(0, 500)).toBe(1)
    expect(nextStreak(3, 500)).toBe(4)
    expect(nextStreak(3, 10_000)).toBe(1)
    expect(nextStreak(3, 2_000, { stableAfterMs: 1_000 })).toBe(1)
  })
})
