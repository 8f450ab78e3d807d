/**
 * The run directory contract (src/runs/RunDirectory.ts), one suite run against the memory directory and the
 * PostgreSQL one (a private server; a visible skip locally without PostgreSQL, a failure in CI): creating, reading,
 * moving a run only from the states a move allows, exactly one of several concurrent moves winning, claims,
 * counts, listing and pruning.
 */
import { randomUUID } from "node:crypto"
import { PgClient } from "@effect/sql-pg"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Fiber, Layer, Redacted } from "effect"
import { RunDirectory, type RunDirectoryShape } from "../../src/runs/RunDirectory.ts"
import * as RunDirectoryMemory from "../../src/runs/RunDirectoryMemory.ts"
import * as RunDirectorySql from "../../src/runs/RunDirectorySql.ts"
import { requirePostgres, startPostgresServer } from "../support/postgresServer.ts"

const newRun = (owner: string | null = "ann") => {
  const runId = randomUUID()
  return { runId, definition: "Research", executionId: `e-${runId}`, owner, channel: `run:${runId}` }
}

const suite = (name: string, directory: Layer.Layer<RunDirectory, unknown>) =>
  layer(directory, { excludeTestServices: true, timeout: 60_000 })(`run directory: ${name}`, (it) => {
    const withDirectory = <A>(body: (d: RunDirectoryShape) => Effect.Effect<A, unknown>) =>
      Effect.flatMap(RunDirectory, body)

    it.effect("records a run as starting and reads it back; an unknown id reads as undefined", () =>
      withDirectory((d) =>
        Effect.gen(function* () {
          const run = newRun()
          yield* d.create(run, 1000)
          expect(yield* d.get(run.runId)).toEqual({
            ...run,
            state: "starting",
            checkpoint: null,
            worker: null,
            cancelReason: null,
            createdAt: 1000,
            updatedAt: 1000
          })
          expect(yield* d.get("nope")).toBeUndefined()
          expect(yield* Effect.flip(d.create(run, 1001))).toMatchObject({ _tag: "RunStorageError" })
        })
      )
    )

    it.effect("moves only from the states (and the checkpoint) a move names", () =>
      withDirectory((d) =>
        Effect.gen(function* () {
          const run = newRun()
          yield* d.create(run, 1)
          expect(yield* d.transition(run.runId, { from: ["running"], to: "completed" }, 2)).toBe(false)
          expect(yield* d.transition(run.runId, { from: ["starting"], to: "running" }, 3)).toBe(true)
          expect(yield* d.transition(run.runId, { from: ["running"], to: "awaiting_input", at: "s3" }, 4)).toBe(true)
          expect(yield* d.get(run.runId)).toMatchObject({ state: "awaiting_input", checkpoint: "s3", updatedAt: 4 })
          const wrong = { from: ["awaiting_input" as const], onlyAt: "s4", to: "running" as const }
          expect(yield* d.transition(run.runId, wrong, 5)).toBe(false)
          const right = { from: ["awaiting_input" as const], onlyAt: "s3", to: "running" as const }
          expect(yield* d.transition(run.runId, right, 6)).toBe(true)
          expect(yield* d.get(run.runId)).toMatchObject({ state: "running", checkpoint: null })
          expect(yield* d.transition("nope", { from: ["running"], to: "failed" }, 7)).toBe(false)
        })
      )
    )

    it.effect("whoever waits for a run's change hears a worker begin it and a move end it", () =>
      withDirectory((d) =>
        Effect.gen(function* () {
          const run = newRun()
          yield* d.create(run, 1)
          yield* Effect.sleep("200 millis") // the PostgreSQL directory's listener settles
          const begun = yield* Effect.forkChild(d.changed(run.runId), { startImmediately: true })
          yield* d.enter(run.runId, "w1", 2)
          yield* Fiber.join(begun).pipe(Effect.timeout("2 seconds"))
          const ended = yield* Effect.forkChild(d.changed(run.runId), { startImmediately: true })
          expect(yield* d.transition(run.runId, { from: ["running"], to: "completed" }, 3)).toBe(true)
          yield* Fiber.join(ended).pipe(Effect.timeout("2 seconds"))
        })
      )
    )

    it.effect("of ten concurrent answers to one checkpoint, exactly one moves the run", () =>
      withDirectory((d) =>
        Effect.gen(function* () {
          const run = newRun()
          yield* d.create(run, 1)
          yield* d.transition(run.runId, { from: ["starting"], to: "running" }, 2)
          yield* d.transition(run.runId, { from: ["running"], to: "awaiting_input", at: "go" }, 3)
          const moves = yield* Effect.all(
            Array.from({ length: 10 }, () =>
              d.transition(run.runId, { from: ["awaiting_input"], onlyAt: "go", to: "running" }, 4)
            ),
            { concurrency: "unbounded" }
          )
          expect(moves.filter(Boolean)).toHaveLength(1)
        })
      )
    )

    it.effect("entering begins a starting run and says who had it; counts, lists and prunes", () =>
      withDirectory((d) =>
        Effect.gen(function* () {
          const owner = `owner-${randomUUID()}`
          const runs = [newRun(owner), newRun(owner), newRun(owner)]
          for (const run of runs) yield* d.create(run, 10)
          expect(yield* d.enter(runs[0]!.runId, "w1", 11)).toEqual({ state: "starting", worker: null })
          expect(yield* d.get(runs[0]!.runId)).toMatchObject({ state: "running", worker: "w1" })
          expect(yield* d.enter(runs[0]!.runId, "w1", 12)).toEqual({ state: "running", worker: "w1" })
          expect(yield* d.enter(runs[0]!.runId, "w2", 13)).toEqual({ state: "running", worker: "w1" })
          expect(yield* d.enter("nope", "w1", 14)).toBeUndefined()
          // an abandoned run stays abandoned when a worker enters it late
          yield* d.transition(runs[1]!.runId, { from: ["starting"], to: "abandoned" }, 14)
          expect(yield* d.enter(runs[1]!.runId, "w1", 15)).toEqual({ state: "abandoned", worker: null })
          expect((yield* d.get(runs[1]!.runId))?.state).toBe("abandoned")
          yield* d.setCancelReason(runs[2]!.runId, "enough", 15)
          expect((yield* d.get(runs[2]!.runId))?.cancelReason).toBe("enough")
          expect(yield* d.countActive(owner)).toBe(2)
          const active = (yield* d.active(100_000)).map((r) => r.runId)
          expect(active).toEqual(expect.arrayContaining([runs[0]!.runId, runs[2]!.runId]))
          expect(active).not.toContain(runs[1]!.runId)
          expect(yield* d.countActive(null)).toBeGreaterThanOrEqual(0)
          // only final runs older than the cut are forgotten
          expect(yield* d.prune(21)).toBeGreaterThanOrEqual(1)
          expect(yield* d.get(runs[1]!.runId)).toBeUndefined()
          expect(yield* d.get(runs[0]!.runId)).toBeDefined()
          yield* d.ping
        })
      )
    )
  })

suite("memory", RunDirectoryMemory.layer())

const postgres = requirePostgres("Run directory on PostgreSQL")
if (postgres === undefined) {
  describe.skip("run directory: PostgreSQL (not installed)", () => {
    it("skipped", () => {})
  })
} else {
  const server = Effect.acquireRelease(
    Effect.promise(() => startPostgresServer(postgres)),
    (pg) => Effect.promise(() => pg.dispose())
  )
  suite(
    "PostgreSQL",
    Layer.unwrap(
      Effect.map(server, (pg) =>
        RunDirectorySql.layer().pipe(Layer.provide(PgClient.layer({ url: Redacted.make(pg.url) })))
      )
    )
  )
}
