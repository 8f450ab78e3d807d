/**
 * What a process knows about runs without asking anyone: its role, whether the run storage answered its last
 * background check, and counters of run transitions and run commands. `/readyz` and `/metrics` read it (never
 * waiting on the database), and every transition of a run it executes is logged here, one line each.
 */
import { Context, Effect } from "effect"

/** A process's part in runs: gateways start and command runs, workers execute them, `all` does both. */
export type Role = "gateway" | "worker" | "all"

export type Transition = "started" | "awaiting_input" | "resumed" | "completed" | "failed" | "cancelled" | "moved"

/** Transitions counted (a worker's view: it counts what it executed). */
export class RunCounters {
  started = 0
  completed = 0
  failed = 0
  cancelled = 0
  /** Runs this worker took over from another worker (after a crash, a stop or a shard move). */
  resumedElsewhere = 0
  /** Gateway commands on runs by `<command>:<outcome>` (start:ok, cancel:not_found, answer:unavailable...). */
  readonly commands = new Map<string, number>()

  command(name: string, outcome: string): void {
    const key = `${name}:${outcome}`
    this.commands.set(key, (this.commands.get(key) ?? 0) + 1)
  }
}

export interface Readiness {
  readonly ready: boolean
  /** Why not, when not ready. */
  readonly reason?: string
}

export interface RunsStatusShape {
  readonly role: Role
  readonly storage: "memory" | "postgres"
  /** This process's name as a worker: its runner address, or "local" in one process. */
  readonly worker: string
  readonly counters: RunCounters
  /** From state kept up to date in the background; answers at once. */
  readonly readiness: () => Readiness
  /** Logs one line for a run's transition and counts it. */
  readonly transition: (
    run: { readonly runId: string; readonly definition: string },
    transition: Transition,
    detail?: string
  ) => Effect.Effect<void>
}

export class RunsStatus extends Context.Service<RunsStatus, RunsStatusShape>()("tidings/runs/RunsStatus") {}

export const make = (options: {
  readonly role: Role
  readonly storage: "memory" | "postgres"
  readonly worker: string
  readonly readiness: () => Readiness
}): RunsStatusShape => {
  const counters = new RunCounters()
  return {
    ...options,
    counters,
    transition: (run, transition, detail) =>
      Effect.suspend(() => {
        switch (transition) {
          case "started":
            counters.started++
            break
          case "completed":
            counters.completed++
            break
          case "failed":
            counters.failed++
            break
          case "cancelled":
            counters.cancelled++
            break
          case "moved":
            counters.resumedElsewhere++
            break
        }
        const line = `run ${run.runId} ${transition}${detail === undefined ? "" : `: ${detail}`}`
        return Effect.logInfo(line).pipe(
          Effect.annotateLogs({ run: run.runId, definition: run.definition, worker: options.worker })
        )
      })
  }
}
