/**
 * A run as the run directory keeps it: who owns it, where its events go, and where it stands. The directory is
 * the gateways' view of runs (ownership, state, pending checkpoint); the run's execution itself lives in the
 * workflow engine's storage.
 */

/**
 * Where a run stands. `starting`: a gateway asked for it and waits for a worker to begin it; `abandoned`: no
 * worker began it in time, the gateway answered `unavailable`, and it will never run. The last four are final.
 */
export type RunState = "starting" | "running" | "awaiting_input" | "completed" | "failed" | "cancelled" | "abandoned"

export const finalStates: ReadonlySet<RunState> = new Set(["completed", "failed", "cancelled", "abandoned"])
export const activeStates: ReadonlyArray<RunState> = ["starting", "running", "awaiting_input"]

export const isFinal = (state: RunState): boolean => finalStates.has(state)

/** What a gateway records when it starts a run. */
export interface NewRun {
  readonly runId: string
  /** The run definition's name. */
  readonly definition: string
  readonly executionId: string
  readonly owner: string | null
  readonly channel: string
}

export interface RunRecord extends NewRun {
  readonly state: RunState
  /** The checkpoint the run waits at (state `awaiting_input`), else null. */
  readonly checkpoint: string | null
  /** The worker that last executed the run (its runner address, or "local"). */
  readonly worker: string | null
  /** The reason a cancel gave, once one was asked for. */
  readonly cancelReason: string | null
  /** Milliseconds since the Unix epoch, from the writer's Clock. */
  readonly createdAt: number
  readonly updatedAt: number
}
