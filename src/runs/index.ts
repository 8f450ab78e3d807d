/**
 * `tidings/runs`: durable runs on Effect Cluster + Workflow. Declare a run (`make`), implement it on workers
 * (`implement`), run the engine in a process by role and storage (`layer`), and command runs from gateways
 * (`RunClient`; bind protocol commands to it with `RunCommands` from `tidings/server`). docs/runs.md explains the
 * model and what is guaranteed.
 */
export {
  CheckpointNotPending,
  NotRunOwner,
  RunLimitExceeded,
  RunNotFound,
  RunStorageError
} from "./errors.ts"
export {
  type CancelOutcome,
  type GatewayOptions,
  RunClient,
  type RunClientShape,
  type StartedRun
} from "./RunClient.ts"
export type { Answered, RunContext, RunEnv, RunStream } from "./RunContext.ts"
export {
  type AnswerOf,
  type AnyRunDefinition,
  type InputOf,
  make,
  type RunDefinition
} from "./RunDefinition.ts"
export type { RunRecord, RunState } from "./RunRecord.ts"
export {
  layer,
  type MemoryStorage,
  type PostgresStorage,
  type RunsOptions,
  RunsStartError,
  type Storage
} from "./RunsLayer.ts"
export { type Readiness, type Role, RunCounters, RunsStatus, type RunsStatusShape } from "./RunsStatus.ts"
export { type EndContext, implement, type RunHooks, type WorkerEnv, type WorkerOptions } from "./RunWorker.ts"
