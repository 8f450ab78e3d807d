/**
 * The run directory in one process's memory: for the embedded default (one process, memory transport), where
 * runs end with the process anyway. Final runs beyond `keepFinished` are forgotten oldest first.
 */
import { Effect, Layer } from "effect"
import { RunStorageError } from "./errors.ts"
import { allows, RunDirectory, type RunDirectoryShape } from "./RunDirectory.ts"
import { isFinal, type RunRecord } from "./RunRecord.ts"
import { Waiters } from "./Waiters.ts"

export interface MemoryDirectoryOptions {
  /** Final runs remembered (for `cancel` → already finished, and state queries); default 10,000. */
  readonly keepFinished?: number
}

export const make = (options: MemoryDirectoryOptions = {}): RunDirectoryShape => {
  const keepFinished = options.keepFinished ?? 10_000
  const runs = new Map<string, RunRecord>()
  const finished: Array<string> = []

  const waiters = new Waiters()
  const update = (record: RunRecord, changes: Partial<RunRecord>, now: number) => {
    const next: RunRecord = { ...record, ...changes, updatedAt: now }
    runs.set(record.runId, next)
    waiters.wake(record.runId)
    if (!isFinal(record.state) && isFinal(next.state)) {
      finished.push(record.runId)
      while (finished.length > keepFinished) runs.delete(finished.shift()!)
    }
  }

  return {
    create: (run, now) =>
      Effect.suspend(() => {
        if (runs.has(run.runId)) return Effect.fail(new RunStorageError({ message: `run ${run.runId} exists` }))
        runs.set(run.runId, {
          ...run,
          state: "starting",
          checkpoint: null,
          worker: null,
          cancelReason: null,
          createdAt: now,
          updatedAt: now
        })
        return Effect.void
      }),
    get: (runId) => Effect.sync(() => runs.get(runId)),
    transition: (runId, move, now) =>
      Effect.sync(() => {
        const record = runs.get(runId)
        if (record === undefined || !allows(record, move)) return false
        update(record, { state: move.to, checkpoint: move.at ?? null }, now)
        return true
      }),
    enter: (runId, worker, now) =>
      Effect.sync(() => {
        const record = runs.get(runId)
        if (record === undefined) return undefined
        if (record.worker !== worker || record.state === "starting") {
          update(record, { worker, state: record.state === "starting" ? "running" : record.state }, now)
        }
        return { state: record.state, worker: record.worker }
      }),
    setCancelReason: (runId, reason, now) =>
      Effect.sync(() => {
        const record = runs.get(runId)
        if (record !== undefined) update(record, { cancelReason: reason }, now)
      }),
    active: (limit) =>
      Effect.sync(() => {
        const found: Array<RunRecord> = []
        for (const record of runs.values()) {
          if (found.length >= limit) break
          if (!isFinal(record.state)) found.push(record)
        }
        return found
      }),
    countActive: (owner) =>
      Effect.sync(() => {
        let count = 0
        for (const record of runs.values()) if (record.owner === owner && !isFinal(record.state)) count++
        return count
      }),
    prune: (before) =>
      Effect.sync(() => {
        let pruned = 0
        for (const [runId, record] of runs) {
          if (isFinal(record.state) && record.updatedAt < before) {
            runs.delete(runId)
            pruned++
          }
        }
        return pruned
      }),
    changed: (runId) => waiters.wait(runId),
    ping: Effect.void
  }
}

export const layer = (options?: MemoryDirectoryOptions): Layer.Layer<RunDirectory> =>
  Layer.sync(RunDirectory, () => make(options))
