/**
 * The run directory contract: the small shared table that lets any gateway answer a command about any run — who
 * owns it, whether it exists, where it stands, which checkpoint it waits at — without asking the worker that
 * runs it. Workers write a run's transitions; gateways create runs and move them at `start`, `cancel` and answers.
 *
 * Implementations: RunDirectoryMemory.ts (one process) and RunDirectorySql.ts (PostgreSQL, beside the workflow
 * engine's tables). It schedules nothing and leases nothing: execution belongs to the workflow engine.
 */
import { Context, type Effect } from "effect"
import type { RunStorageError } from "./errors.ts"
import type { NewRun, RunRecord, RunState } from "./RunRecord.ts"

/** A conditional move of a run's state: applied only from one of `from` (and, with `onlyAt`, at that checkpoint). */
export interface Transition {
  readonly from: ReadonlyArray<RunState>
  readonly to: RunState
  /** Applies only while the run waits at this checkpoint. */
  readonly onlyAt?: string
  /** The checkpoint the run waits at after the move (`to` = `awaiting_input`); cleared otherwise. */
  readonly at?: string
}

export interface RunDirectoryShape {
  /** Records a new run in state `starting`. Run ids are random: an existing id fails as a storage error. */
  readonly create: (run: NewRun, now: number) => Effect.Effect<void, RunStorageError>

  /** The run, or undefined when no run has this id. */
  readonly get: (runId: string) => Effect.Effect<RunRecord | undefined, RunStorageError>

  /**
   * Moves a run atomically: of two gateways answering the same checkpoint, or a gateway abandoning a start while
   * a worker begins it, exactly one move succeeds. Returns whether this one did.
   */
  readonly transition: (runId: string, move: Transition, now: number) => Effect.Effect<boolean, RunStorageError>

  /**
   * A worker enters a run (each time it executes the run's body): records `worker` as the one executing it and,
   * when the run is `starting`, begins it (`running`), in one atomic step. Returns the state and worker recorded
   * before (undefined: no such run). A different earlier worker means the run moved; a `starting` state means this
   * entry began it; `abandoned` means a gateway gave up on it and it must not run.
   */
  readonly enter: (
    runId: string,
    worker: string,
    now: number
  ) => Effect.Effect<{ readonly state: RunState; readonly worker: string | null } | undefined, RunStorageError>

  /** Stores the reason of a cancel (read by the run when it ends cancelled). */
  readonly setCancelReason: (runId: string, reason: string, now: number) => Effect.Effect<void, RunStorageError>

  /** Runs that are not final, oldest first, at most `limit`. */
  readonly active: (limit: number) => Effect.Effect<ReadonlyArray<RunRecord>, RunStorageError>

  /** How many of `owner`'s runs are not final (for a per-user limit). */
  readonly countActive: (owner: string | null) => Effect.Effect<number, RunStorageError>

  /** Forgets final runs last updated before `before` (ms since the epoch); returns how many. */
  readonly prune: (before: number) => Effect.Effect<number, RunStorageError>

  /**
   * Completes when this process hears that the run's record changed (a worker began or ended it), or never: it
   * saves a gateway from polling often, and callers still poll now and then in case a notice is lost.
   */
  readonly changed: (runId: string) => Effect.Effect<void>

  /** Fails when the storage cannot be reached (readiness, checked in the background). */
  readonly ping: Effect.Effect<void, RunStorageError>
}

export class RunDirectory extends Context.Service<RunDirectory, RunDirectoryShape>()("tidings/runs/RunDirectory") {}

/** Whether `record` may make `move` (the one rule both implementations apply). */
export const allows = (record: RunRecord, move: Transition): boolean =>
  move.from.includes(record.state) && (move.onlyAt === undefined || record.checkpoint === move.onlyAt)
