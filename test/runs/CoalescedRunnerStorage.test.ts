/**
 * Merged shard-lock refreshes (src/runs/CoalescedRunnerStorage.ts): concurrent refreshes become a few inner ones,
 * each caller gets back its own shards that are still held, a failure reaches every caller of its batch, the
 * empty refresh passes straight through, and a refresh after a failure works again. Checks of shards the last
 * refresh covered are answered from it for a second, unless a shard was acquired or released since.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope } from "effect"
import { RunnerAddress, type RunnerStorage, ShardId } from "effect/cluster"
import { PersistenceError } from "effect/cluster/ClusterError"
import { coalesce } from "../../src/runs/CoalescedRunnerStorage.ts"

const fake = () => {
  const calls: Array<Array<number>> = []
  const state = { fail: false }
  const inner = {
    refresh: (_address: RunnerAddress.RunnerAddress, shardIds: Iterable<ShardId.ShardId>) =>
      Effect.gen(function* () {
        const ids = Array.from(shardIds)
        calls.push(ids.map((s) => s.id))
        yield* Effect.sleep(20)
        if (state.fail) return yield* Effect.fail(new PersistenceError({ cause: "boom" }))
        // shards divisible by 7 were lost to another runner
        return ids.filter((s) => s.id % 7 !== 0)
      }),
    acquire: (_address: RunnerAddress.RunnerAddress, shardIds: Iterable<ShardId.ShardId>) =>
      Effect.succeed(Array.from(shardIds)),
    release: () => Effect.void,
    releaseAll: () => Effect.void
  } as unknown as RunnerStorage.RunnerStorage["Service"]
  return { calls, state, inner }
}

const address = RunnerAddress.make("127.0.0.1", 1)

describe("coalesced shard-lock refreshes", () => {
  it.live("fifty concurrent refreshes take two inner ones, and each caller gets its own held shards", () =>
    Effect.gen(function* () {
      const { calls, inner } = fake()
      const storage = coalesce(inner, yield* Scope.make())
      const fibers = yield* Effect.forEach(
        Array.from({ length: 50 }, (_, i) => i + 1),
        (i) => Effect.forkChild(storage.refresh(address, [ShardId.make("default", i)]))
      )
      const results = yield* Effect.forEach(fibers, Fiber.join)
      expect(calls.length).toBeLessThanOrEqual(2)
      expect(calls.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1))
      for (const [i, held] of results.entries()) {
        expect(held.map((s) => s.id)).toEqual((i + 1) % 7 === 0 ? [] : [i + 1])
      }
    })
  )

  it.live("an empty refresh passes through; a failure reaches its callers; the next refresh works", () =>
    Effect.gen(function* () {
      const { calls, state, inner } = fake()
      const storage = coalesce(inner, yield* Scope.make())
      expect(yield* storage.refresh(address, [])).toEqual([])
      expect(calls).toEqual([[]])
      state.fail = true
      const failed = yield* Effect.all(
        [1, 2, 3].map((i) => Effect.exit(storage.refresh(address, [ShardId.make("default", i)]))),
        { concurrency: "unbounded" }
      )
      expect(failed.every(Exit.isFailure)).toBe(true)
      state.fail = false
      expect((yield* storage.refresh(address, [ShardId.make("default", 3)])).map((s) => s.id)).toEqual([3])
    })
  )

  it.live("checks of shards the last refresh covered are answered from it for a second, not after", () =>
    Effect.gen(function* () {
      const { calls, inner } = fake()
      const storage = coalesce(inner, yield* Scope.make())
      const all = Array.from({ length: 10 }, (_, i) => ShardId.make("default", i + 1))
      expect((yield* storage.refresh(address, all)).length).toBe(9)
      expect((yield* storage.refresh(address, [all[2]!])).map((s) => s.id)).toEqual([3])
      expect(yield* storage.refresh(address, [all[6]!])).toEqual([]) // lost in the last refresh
      expect(calls.length).toBe(1)
      // a shard the last refresh did not ask about goes to the storage
      yield* storage.refresh(address, [ShardId.make("default", 11)])
      expect(calls.length).toBe(2)
      yield* Effect.sleep(1100)
      yield* storage.refresh(address, [all[2]!])
      expect(calls.length).toBe(3)
    })
  )

  it.live("an acquisition or a release ends the answers from the last refresh", () =>
    Effect.gen(function* () {
      const { calls, inner } = fake()
      const storage = coalesce(inner, yield* Scope.make())
      const all = Array.from({ length: 10 }, (_, i) => ShardId.make("default", i + 1))
      yield* storage.refresh(address, all)
      yield* storage.release(address, all[2]!)
      yield* storage.refresh(address, [all[2]!])
      expect(calls.length).toBe(2)
      yield* storage.refresh(address, all)
      yield* storage.acquire(address, [ShardId.make("default", 12)])
      yield* storage.refresh(address, [all[0]!])
      expect(calls.length).toBe(4)
    })
  )
})
