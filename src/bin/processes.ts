/**
 * `tidings serve --processes N` (src/server/processes): the options check that runs first, and the primary's
 * part — fork N `tidings serve` processes with the same flags and watch them. Each process then runs the usual
 * `serve` path with `ProcessGroup.layer`; what differs for it (its runner port, the development secret it
 * shares with the others) is read here too. With 1, the default, none of this runs.
 */
import cluster from "node:cluster"
import { createServer } from "node:net"
import { Effect, Option, Schema } from "effect"
import type { ServeConfig } from "../server/Config.ts"
import * as Processes from "../server/processes/index.ts"
import { INDEX_ENV } from "../server/processes/Messages.ts"
import { TransportKind } from "../transports/fromConfig.ts"

/** A bad combination of options: one line on stderr and exit code 2, as for an unknown command. */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", { message: Schema.String }) {}

/** The development secret the primary makes once, so that every process accepts the one printed token. */
const DEV_SECRET_ENV = "TIDINGS_PROCESSES_DEV_SECRET"

/** Whether this is one process of several (forked by the primary). */
export const isGroupMember = (): boolean => cluster.isWorker && process.env[INDEX_ENV] !== undefined

/** This process's place among the node's processes: 0 for a lone process. */
export const processIndex = (): number => (isGroupMember() ? Number(process.env[INDEX_ENV]) : 0)

/** The development secret shared by the node's processes, when the primary made one. */
export const sharedDevSecret = (): string | undefined => (isGroupMember() ? process.env[DEV_SECRET_ENV] : undefined)

/** Refuses what cannot run as several processes; fails with UsageError naming the fix. */
const check = (config: ServeConfig, command: string) =>
  Effect.gen(function* () {
    const n = config.processes
    if (command !== "serve") {
      return yield* new UsageError({ message: `--processes is for tidings serve only (got ${n} for ${command})` })
    }
    if (config.role === "worker") {
      return yield* new UsageError({
        message: `--processes ${n} is for --role all or gateway: a runs worker has no sockets to spread`
      })
    }
    const transport = yield* TransportKind
    if (transport === "memory") {
      return yield* new UsageError({
        message: `--processes ${n} needs a shared transport (--transport redis or nats): with the memory transport each process would be a separate node`
      })
    }
    if (Option.isSome(config.bridges)) {
      return yield* new UsageError({
        message: `--processes ${n} with --bridges would run every bridge ${n} times; run them with tidings bridge instead`
      })
    }
    if (Option.getOrUndefined(config.balancing) === "kernel" && !Processes.kernelBalancingAvailable()) {
      return yield* new UsageError({
        message: `--balancing kernel needs SO_REUSEPORT support in Node (22.12 or later, on Linux or FreeBSD); this is Node ${process.versions.node} on ${process.platform}: use --balancing primary`
      })
    }
  })

/**
 * Fails when something already listens on the node's port. With kernel balancing each process binds with
 * SO_REUSEPORT, which would not see another listener of the same user (a stale node, an overlapping deploy): the
 * kernel would split clients between the two. A plain bind here does see it.
 */
const portFree = (host: string, port: number) =>
  Effect.callback<void, Error>((resume) => {
    const probe = createServer()
    probe.once("error", (error: NodeJS.ErrnoException) =>
      resume(
        Effect.fail(
          new Error(
            error.code === "EADDRINUSE"
              ? `port ${port} on ${host} is already in use (another tidings node?)`
              : `cannot listen on ${host}:${port}: ${error.message}`
          )
        )
      )
    )
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resume(Effect.void)))
  })

/**
 * The primary: forks the processes (same command line; process k gets runner port --runner-port + k) and
 * resolves with the exit code once all have exited. Interrupting it (SIGTERM, SIGINT) shuts them down gracefully.
 */
export const supervise = (config: ServeConfig, command: string) =>
  Effect.gen(function* () {
    yield* check(config, command)
    const devSecret = crypto.randomUUID() + crypto.randomUUID()
    // the supervisor's lines (a process exited, restarted) go through this program's logger (JSON in production)
    const log = Effect.runForkWith(yield* Effect.context<never>())
    const balancing = Processes.balancingOnPort(
      Processes.resolveBalancing(Option.getOrUndefined(config.balancing)),
      config.port
    )
    if (balancing === "kernel") yield* portFree(config.host, config.port)
    const supervisor = Processes.supervise({
      processes: config.processes,
      balancing,
      env: () => ({ [DEV_SECRET_ENV]: devSecret }),
      log: (line, level) => void log(level === "info" ? Effect.logInfo(line) : Effect.logWarning(line))
    })
    yield* Effect.logInfo(
      `tidings primary (pid ${process.pid}) runs ${config.processes} processes on port ${config.port} (${balancing} balancing)`
    )
    return yield* Effect.promise(() => supervisor.exited).pipe(
      Effect.onInterrupt(() =>
        Effect.promise(() => {
          supervisor.stop()
          return supervisor.exited
        })
      )
    )
  })
