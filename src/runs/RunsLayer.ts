/**
 * Runs in a process, by role and storage: the workflow engine (Effect Cluster's, in memory for one process or
 * over PostgreSQL for many), the run directory, the process's RunsStatus, and then — by role — the RunClient a
 * gateway's commands use and the run implementations a worker hosts.
 *
 * - memory (the embedded default): one process is gateway and worker; runs end with the process.
 * - postgres: message and runner storage in PostgreSQL (`@effect/sql-pg`); workers are cluster runners reachable
 *   on their socket address; gateways are cluster clients that own no shards. A worker killed mid-run loses
 *   nothing: its shards move to another worker, which resumes its runs from their last completed step.
 */
import { NodeClusterSocket, NodeCrypto } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Cause, Duration, Effect, Layer, Option, Redacted, Schedule } from "effect"
import {
  ClusterWorkflowEngine,
  MessageStorage,
  RunnerAddress,
  RunnerHealth,
  RunnerStorage,
  Runners,
  Sharding,
  ShardingConfig,
  SqlMessageStorage,
  SqlRunnerStorage
} from "effect/cluster"
import type { WorkflowEngine } from "effect/workflow"
import type { Transport } from "../transports/Transport.ts"
import * as CoalescedRunnerStorage from "./CoalescedRunnerStorage.ts"
import { withDeadline } from "./Deadline.ts"
import * as LocalRuns from "./LocalRuns.ts"
import * as PauseAwareClock from "./PauseAwareClock.ts"
import * as RunClient from "./RunClient.ts"
import type { AnyRunDefinition } from "./RunDefinition.ts"
import { RunDirectory } from "./RunDirectory.ts"
import * as RunDirectoryMemory from "./RunDirectoryMemory.ts"
import * as RunDirectorySql from "./RunDirectorySql.ts"
import * as RunsStatus from "./RunsStatus.ts"
import type { WorkerEnv } from "./RunWorker.ts"

export interface MemoryStorage {
  readonly kind: "memory"
}

export interface PostgresStorage {
  readonly kind: "postgres"
  /** `postgres://user@host:port/database` */
  readonly url: string | Redacted.Redacted<string>
  /** Where this worker's runner listens and is reached by others (workers only; default 127.0.0.1:34431). */
  readonly runner?: { readonly host: string; readonly port: number }
  /**
   * How long a worker counts as alive after its last heartbeat (default 6,000 ms). This governs how soon a killed
   * worker's runs move: the others stop counting it after this long and take its shards at their next refresh,
   * so its runs publish again within about this plus `shardLockRefreshMs`. Its locks are PostgreSQL advisory
   * locks held by its database session, which the server ends after this long idle: a worker paused for less
   * keeps its shards (its deadlines do not count the pause, PauseAwareClock.ts); one paused for longer loses them
   * to another worker (docs/runs.md says what that means for a step it was executing).
   */
  readonly shardLockExpirationMs?: number
  /** How often a worker refreshes its heartbeat and locks and reads the others' (default 2,000 ms). */
  readonly shardLockRefreshMs?: number
  /**
   * How often a worker reads its shards' unprocessed messages from storage besides when it is told of one
   * (default 100 ms; Effect Cluster's own default is 10 s). A message is normally read as soon as the worker is
   * told of it; this poll bounds how long one whose notification was lost waits.
   */
  readonly pollMs?: number
}

export type Storage = MemoryStorage | PostgresStorage

export interface RunsOptions {
  /** gateway: commands runs; worker: executes them; all (default): both. */
  readonly role?: RunsStatus.Role
  readonly storage?: Storage
  /** The runs this process knows (a gateway starts, cancels and answers only these). */
  readonly runs: ReadonlyArray<AnyRunDefinition>
  /** The implementations a worker hosts (RunWorker.implement). */
  readonly workers?: ReadonlyArray<Layer.Layer<never, never, WorkerEnv>>
  readonly gateway?: RunClient.GatewayOptions
  /** How often the run storage is checked for readiness (default 1,000 ms). */
  readonly healthCheckMs?: number
  /** Final runs are forgotten by the directory after this long (default 7 days); pruned by workers hourly. */
  readonly finishedRetentionMs?: number
}

/** The runs engine failed to start: the storage is unreachable, or the role does not fit the storage. */
export class RunsStartError extends Error {
  override readonly name = "RunsStartError"
}

/** A layer whose failure is reported as a RunsStartError saying what could not start. */
const failingAs = <ROut, E, RIn>(
  what: string,
  layer: Layer.Layer<ROut, E, RIn>
): Layer.Layer<ROut, RunsStartError, RIn> =>
  Layer.catchCause(layer, (cause) =>
    Layer.effectDiscard(Effect.fail(new RunsStartError(`${what}: ${describe(Cause.squash(cause))}`)))
  ) as unknown as Layer.Layer<ROut, RunsStartError, RIn>

const describe = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const reason = (error as { reason?: { message?: unknown } }).reason
    if (reason && typeof reason.message === "string") return reason.message
    if ("message" in error && typeof error.message === "string") return error.message
  }
  return String(error)
}

const memoryCluster = Sharding.layer.pipe(
  Layer.provideMerge(Runners.layerNoop),
  Layer.provideMerge(MessageStorage.layerMemory),
  Layer.provide([RunnerStorage.layerMemory, RunnerHealth.layerNoop]),
  Layer.provide(ShardingConfig.layer())
)

const runnerOf = (storage: PostgresStorage) => storage.runner ?? { host: "127.0.0.1", port: 34431 }

/** The process's name as a worker, in logs and in the directory's `worker` column. */
export const workerName = (role: RunsStatus.Role, storage: Storage): string =>
  storage.kind === "memory" || role === "gateway"
    ? `local:${process.pid}`
    : `${runnerOf(storage).host}:${runnerOf(storage).port}`

const statusLayer = (role: RunsStatus.Role, storage: Storage, healthCheckMs: number) =>
  Layer.effect(
    RunsStatus.RunsStatus,
    Effect.gen(function* () {
      const directory = yield* RunDirectory
      let readiness: RunsStatus.Readiness = { ready: true }
      // Readiness is kept up to date here, in the background: /readyz reads it and never waits on the database.
      const check = withDeadline(directory.ping, healthCheckMs, () =>
        Effect.fail({ message: `run storage did not answer a ping within ${healthCheckMs} ms` })
      ).pipe(
        Effect.match({
          onSuccess: () => {
            readiness = { ready: true }
          },
          onFailure: (error) => {
            readiness = { ready: false, reason: error.message }
          }
        })
      )
      if (storage.kind === "postgres") {
        yield* Effect.forkScoped(Effect.repeat(check, Schedule.spaced(Duration.millis(healthCheckMs))))
      }
      return RunsStatus.make({
        role,
        storage: storage.kind,
        worker: workerName(role, storage),
        readiness: () => readiness
      })
    })
  )

/** Forgets final runs past their retention, hourly, on workers. */
const pruner = (retentionMs: number) =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const directory = yield* RunDirectory
      const prune = Effect.flatMap(
        Effect.clockWith((clock) => clock.currentTimeMillis),
        (now) => directory.prune(now - retentionMs)
      ).pipe(Effect.ignore)
      yield* Effect.forkScoped(Effect.repeat(prune, Schedule.spaced(Duration.hours(1))))
    })
  )

const postgresParts = (storage: PostgresStorage, role: RunsStatus.Role) => {
  const pg = PgClient.layer({
    url: typeof storage.url === "string" ? Redacted.make(storage.url) : storage.url,
    connectTimeout: Duration.seconds(3),
    applicationName: `tidings-${role}`
  })
  const runner = runnerOf(storage)
  const shardingConfig = {
    runnerAddress: Option.some(RunnerAddress.make(runner.host, runner.port)),
    shardLockRefreshInterval: Duration.millis(storage.shardLockRefreshMs ?? 2000),
    refreshAssignmentsInterval: Duration.millis(storage.shardLockRefreshMs ?? 2000),
    shardLockExpiration: Duration.millis(storage.shardLockExpirationMs ?? 6000),
    entityMessagePollInterval: Duration.millis(storage.pollMs ?? 100)
  }
  // Effect Cluster's SQL storage ("sql"), with the worker's shard-lock refreshes merged (CoalescedRunnerStorage.ts):
  // every persisted reply confirms its shard's lock first, and unmerged those confirmations queue on the one lock
  // connection until the worker's own lock refresh times out and it drops all its shards.
  const sqlStorage = Layer.mergeAll(
    SqlMessageStorage.layer.pipe(Layer.provide(NodeCrypto.layerDigest)),
    CoalescedRunnerStorage.layer.pipe(Layer.provide(Layer.orDie(SqlRunnerStorage.layer)))
  ).pipe(Layer.provide(ShardingConfig.layerFromEnv(shardingConfig)))
  const cluster = NodeClusterSocket.layer({
    clientOnly: role === "gateway",
    storage: "byo",
    shardingConfig
  }).pipe(Layer.provideMerge(sqlStorage))
  return { pg, cluster }
}

/**
 * Runs for a process. Provides the RunClient (roles `gateway` and `all`), RunsStatus, the run directory and the
 * workflow engine; needs the Transport the workers publish through.
 */
export const layer = (
  options: RunsOptions
): Layer.Layer<
  RunClient.RunClient | RunsStatus.RunsStatus | RunDirectory | WorkflowEngine.WorkflowEngine,
  RunsStartError,
  Transport
> => {
  const role = options.role ?? "all"
  const storage = options.storage ?? { kind: "memory" }
  if (storage.kind === "memory" && role !== "all") {
    return Layer.effectDiscard(
      Effect.fail(
        new RunsStartError(
          `role ${role} needs shared run storage: set a database (TIDINGS_DATABASE_URL); in memory one process is both gateway and worker`
        )
      )
    ) as never
  }

  let core: Layer.Layer<RunsStatus.RunsStatus | RunDirectory | WorkflowEngine.WorkflowEngine, RunsStartError>
  if (storage.kind === "memory") {
    const directory = RunDirectoryMemory.layer()
    core = Layer.mergeAll(
      ClusterWorkflowEngine.layer.pipe(Layer.provide(memoryCluster)),
      statusLayer(role, storage, options.healthCheckMs ?? 1000)
    ).pipe(Layer.provideMerge(directory))
  } else {
    const { pg, cluster } = postgresParts(storage, role)
    const directory = failingAs("run storage", RunDirectorySql.layer().pipe(Layer.provide(pg)))
    core = Layer.mergeAll(
      failingAs("run engine", ClusterWorkflowEngine.layer.pipe(Layer.provide(cluster), Layer.provide(pg))),
      statusLayer(role, storage, options.healthCheckMs ?? 1000)
    ).pipe(Layer.provideMerge(directory))
  }

  const parts: Array<Layer.Layer<RunClient.RunClient, never, WorkerEnv | Transport>> = []
  if (role !== "worker") parts.push(RunClient.layer(options.runs, options.gateway))
  // in memory, runs end with the process: the server cancels them (saying why) before it closes its sockets
  if (storage.kind === "memory") {
    parts.push(LocalRuns.layer(options.runs) as unknown as Layer.Layer<RunClient.RunClient, never, WorkerEnv>)
  }
  if (role !== "gateway") {
    // a worker adds nothing to the context: typed as adding the client, which `never` outputs satisfy
    for (const worker of options.workers ?? []) parts.push(worker as Layer.Layer<RunClient.RunClient, never, WorkerEnv>)
    parts.push(
      pruner(options.finishedRetentionMs ?? 7 * 24 * 60 * 60 * 1000) as Layer.Layer<
        RunClient.RunClient,
        never,
        WorkerEnv
      >
    )
  }
  const runs = Layer.mergeAll(Layer.empty, ...parts).pipe(Layer.provideMerge(core))
  // shard locks and deadlines must not give way because the process was paused (PauseAwareClock.ts)
  return (storage.kind === "memory" ? runs : runs.pipe(Layer.provide(PauseAwareClock.layer))) as Layer.Layer<
    RunClient.RunClient | RunsStatus.RunsStatus | RunDirectory | WorkflowEngine.WorkflowEngine,
    RunsStartError,
    Transport
  >
}
