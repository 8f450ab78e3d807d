/**
 * The in-memory transport: the shared conformance suite, plus what only memory can show — time-driven
 * behaviour under `TestClock` (age retention, idempotency window, cursor TTL), ring-buffer wrap-around against
 * a plain model, positions ahead of the top, and listener edge cases (re-entrant appends, throwing listeners).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger } from "effect"
import { TestClock } from "effect/testing"
import * as Memory from "../../src/transports/Memory.ts"
import type { Entry, Publication, Retention, TransportOptions } from "../../src/transports/Transport.ts"
import { suite } from "./TransportSuite.ts"

suite("memory", Memory.layerTesting, {
  resetChannel: (channel) => Memory.MemoryTransportTesting.use((testing) => testing.resetChannel(channel)),
  settleMs: 10
})

const publication = (i: number): Publication => ({ event: "e", data: String(i), version: 1, time: i })

const withRetention = (retention: Retention, extra: Omit<TransportOptions, "retention"> = {}): TransportOptions => ({
  ...extra,
  retention: () => retention
})

describe("Memory transport", () => {
  it.effect("trims entries older than maxAgeMs by the fiber's Clock, even without a new append", () =>
    Effect.gen(function* () {
      const t = yield* Memory.make(withRetention({ maxEntries: 100, maxAgeMs: 1000 }))
      yield* t.append("c", publication(1))
      yield* t.append("c", publication(2))
      yield* TestClock.adjust(600)
      const third = yield* t.append("c", publication(3))
      yield* TestClock.adjust(400)
      // Entries 1 and 2 are exactly maxAgeMs old: still kept.
      expect((yield* t.read("c", undefined, 10)).entries.map((e) => e.offset)).toEqual([1, 2, 3])
      yield* TestClock.adjust(1)
      const top = { epoch: third.epoch, offset: 3 }
      expect((yield* t.read("c", undefined, 10)).entries.map((e) => e.offset)).toEqual([3])
      expect(yield* t.read("c", { epoch: third.epoch, offset: 1 }, 10)).toEqual({
        entries: [],
        top,
        covered: false,
        reason: "trimmed"
      })
      expect((yield* t.read("c", { epoch: third.epoch, offset: 2 }, 10)).entries).toEqual([third])
      yield* TestClock.adjust(600)
      // Everything expired: the log is empty but keeps its epoch and top, and the top is still a valid position.
      expect(yield* t.read("c", undefined, 10)).toEqual({ entries: [], top, covered: true })
      expect(yield* t.read("c", top, 10)).toEqual({ entries: [], top, covered: true })
      expect((yield* t.read("c", { epoch: third.epoch, offset: 2 }, 10)).reason).toBe("trimmed")
      expect((yield* t.append("c", publication(4))).offset).toBe(4)
    })
  )

  it.effect("an idempotency key is forgotten after the window", () =>
    Effect.gen(function* () {
      const t = yield* Memory.make({ idempotencyWindowMs: 1000 })
      const first = yield* t.append("c", publication(1), { idempotencyKey: "k" })
      yield* TestClock.adjust(999)
      expect(yield* t.append("c", publication(2), { idempotencyKey: "k" })).toEqual({ ...first, duplicate: true })
      yield* TestClock.adjust(1)
      const again = yield* t.append("c", publication(3), { idempotencyKey: "k" })
      expect(again.offset).toBe(2)
      expect(again.data).toBe("3")
    })
  )

  it.effect("idempotency keys are scoped to their channel", () =>
    Effect.gen(function* () {
      const t = yield* Memory.make()
      const a = yield* t.append("a", publication(1), { idempotencyKey: "k" })
      const b = yield* t.append("b", publication(2), { idempotencyKey: "k" })
      expect(b.channel).toBe("b")
      expect(b).not.toBe(a)
    })
  )

  it.effect("cursors expire cursorTtlMs after the session's last write", () =>
    Effect.gen(function* () {
      const t = yield* Memory.make({ cursorTtlMs: 1000 })
      yield* t.saveCursor("s", "a", { epoch: "e", offset: 1 })
      yield* t.saveCursor("other", "a", { epoch: "e", offset: 5 })
      yield* TestClock.adjust(800)
      yield* t.saveCursor("s", "b", { epoch: "e", offset: 2 })
      yield* TestClock.adjust(800)
      // "s" was written 800 ms ago, "other" 1600 ms ago.
      expect([...(yield* t.loadCursors("s")).keys()].sort()).toEqual(["a", "b"])
      expect((yield* t.loadCursors("other")).size).toBe(0)
      yield* TestClock.adjust(200)
      expect((yield* t.loadCursors("s")).size).toBe(0)
    })
  )

  it.effect("a loaded cursor map is a snapshot the caller cannot use to change the store", () =>
    Effect.gen(function* () {
      const t = yield* Memory.make()
      yield* t.saveCursor("s", "a", { epoch: "e", offset: 1 })
      const loaded = yield* t.loadCursors("s")
      ;(loaded as Map<string, unknown>).clear()
      expect((yield* t.loadCursors("s")).size).toBe(1)
    })
  )

  it.effect("reads match a plain array model across ring-buffer growth and wrap-around", () =>
    Effect.gen(function* () {
      for (const maxEntries of [1, 3, 15, 16, 17, 40]) {
        const t = yield* Memory.make(withRetention({ maxEntries, maxAgeMs: 60_000 }))
        const model: Array<Entry> = []
        for (let i = 1; i <= 100; i++) {
          model.push(yield* t.append("c", publication(i)))
          if (i % 7 !== 0 && i !== 100) continue
          const retained = model.slice(-maxEntries)
          const first = retained[0]!.offset
          for (const after of [first - 2, first - 1, first, Math.floor((first + i) / 2), i - 1, i]) {
            if (after < 0) continue
            for (const limit of [1, 4, 1000]) {
              const result = yield* t.read("c", { epoch: retained[0]!.epoch, offset: after }, limit)
              if (after < first - 1) {
                expect(result.covered).toBe(false)
                expect(result.reason).toBe("trimmed")
              } else {
                expect(result.covered).toBe(true)
                expect(result.entries).toEqual(model.slice(after, after + limit))
              }
            }
          }
          expect((yield* t.read("c", undefined, 1000)).entries).toEqual(retained)
        }
      }
    })
  )

  it.effect("a position ahead of the top is not covered: its offsets will be reused", () =>
    Effect.gen(function* () {
      const t = yield* Memory.make()
      const entry = yield* t.append("c", publication(1))
      const result = yield* t.read("c", { epoch: entry.epoch, offset: 5 }, 10)
      expect(result).toEqual({
        entries: [],
        top: { epoch: entry.epoch, offset: 1 },
        covered: false,
        reason: "epoch_changed"
      })
    })
  )

  it.effect("a limit of zero or less returns no entries but still says whether the position is covered", () =>
    Effect.gen(function* () {
      const t = yield* Memory.make()
      const entry = yield* t.append("c", publication(1))
      expect(yield* t.read("c", undefined, 0)).toEqual({
        entries: [],
        top: { epoch: entry.epoch, offset: 1 },
        covered: true
      })
      expect((yield* t.read("c", undefined, -3)).entries).toEqual([])
    })
  )

  it.effect("resetting a channel starts a new epoch at offset 1; other channels keep theirs", () =>
    Effect.gen(function* () {
      const t = yield* Memory.make()
      const before = yield* t.append("a", publication(1))
      const other = yield* t.append("b", publication(1))
      yield* t.resetChannel("a")
      const top = yield* t.top("a")
      expect(top.offset).toBe(0)
      expect(top.epoch).not.toBe(before.epoch)
      expect(yield* t.top("b")).toEqual({ epoch: other.epoch, offset: 1 })
      yield* t.resetChannel("never-seen")
    })
  )

  it.effect("every channel and every instance gets its own epoch", () =>
    Effect.gen(function* () {
      const one = yield* Memory.make()
      const two = yield* Memory.make()
      const epochs = new Set([(yield* one.top("a")).epoch, (yield* one.top("b")).epoch, (yield* two.top("a")).epoch])
      expect(epochs.size).toBe(3)
    })
  )

  it.effect("a listener that appends to its own channel does not break offset order for the others", () =>
    Effect.gen(function* () {
      const t = yield* Memory.make()
      const first: Array<number> = []
      const second: Array<number> = []
      yield* t.listen("c", (entry) => {
        first.push(entry.offset)
        if (entry.offset === 1) Effect.runSync(t.append("c", publication(2)))
      })
      yield* t.listen("c", (entry) => void second.push(entry.offset))
      yield* t.append("c", publication(1))
      expect(first).toEqual([1, 2])
      expect(second).toEqual([1, 2])
    })
  )

  it.effect("a throwing listener is logged and neither fails the append nor starves other listeners", () =>
    Effect.gen(function* () {
      const t = yield* Memory.make()
      const heard: Array<number> = []
      yield* t.listen("c", () => {
        throw new Error("listener bug")
      })
      yield* t.listen("c", (entry) => void heard.push(entry.offset))
      const logged: Array<{ level: string; message: unknown }> = []
      const capture = Logger.make((options) => void logged.push({ level: options.logLevel, message: options.message }))
      const entry = yield* t.append("c", publication(1)).pipe(Effect.provide(Logger.layer([capture])))
      expect(entry.offset).toBe(1)
      expect(heard).toEqual([1])
      expect(logged).toHaveLength(1)
      expect(logged[0]!.level).toBe("Error")
      expect(String((logged[0]!.message as ReadonlyArray<unknown>)[0])).toContain("listener(s) threw on c")
      // Reported once, on the append that caused it, not carried into the next one.
      yield* t.append("c", publication(2)).pipe(Effect.provide(Logger.layer([capture])))
      expect(logged).toHaveLength(2)
    })
  )

  it.effect("the same listener registered twice is delivered twice and removed once per scope", () =>
    Effect.gen(function* () {
      const t = yield* Memory.make()
      const heard: Array<number> = []
      const listener = (entry: Entry) => void heard.push(entry.offset)
      yield* t.listen("c", listener)
      yield* Effect.scoped(
        Effect.gen(function* () {
          yield* t.listen("c", listener)
          yield* t.append("c", publication(1))
        })
      )
      yield* t.append("c", publication(2))
      expect(heard).toEqual([1, 1, 2])
    })
  )
})
