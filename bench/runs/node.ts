/**
 * A process of the `runs` bench scenario (`node --import tsx bench/runs/node.ts`): `ROLE=gateway` serves the
 * bench protocol's WebSocket endpoint with its commands bound to runs; `ROLE=worker` executes the runs (status
 * endpoint only). Both share PostgreSQL (TIDINGS_DATABASE_URL) and the transport of Transports.layerConfig.
 * It tells the orchestrator it is ready over the bench's IPC channel (ipc.ts), with its role and pid.
 * Environment: ROLE, TIDINGS_PORT, TIDINGS_JWT_SECRET, TIDINGS_RUNNER_PORT, BENCH_DEADLINE_MS.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Context, Effect, Layer } from "effect"
import * as Runs from "../../src/runs/index.ts"
import * as StatusServer from "../../src/server/http/StatusServer.ts"
import * as Server from "../../src/server/Server.ts"
import * as Transports from "../../src/transports/fromConfig.ts"
import { Transport } from "../../src/transports/Transport.ts"
import { serve } from "../ipc.ts"
import { BenchRunsProtocol, handlers, Work, worker } from "./app.ts"

const required = (name: string): string => {
  const value = process.env[name]
  if (value === undefined) throw new Error(`bench runs node: ${name} is required`)
  return value
}

const role = required("ROLE") as "gateway" | "worker"
const port = Number(required("TIDINGS_PORT"))
const storage: Runs.PostgresStorage = {
  kind: "postgres",
  url: required("TIDINGS_DATABASE_URL"),
  runner: { host: "127.0.0.1", port: Number(process.env.TIDINGS_RUNNER_PORT ?? 34431) }
}

const main = Effect.gen(function* () {
  if (role === "worker") {
    const runs = Runs.layer({ role, storage, runs: [Work], workers: [worker] })
    const context = yield* Layer.build(Layer.provideMerge(runs, Transports.layerConfig()))
    yield* StatusServer.make({
      port,
      transport: Context.get(context, Transport),
      runs: Context.get(context, Runs.RunsStatus)
    })
  } else {
    const server = Server.layer({
      protocol: BenchRunsProtocol,
      handlers,
      port,
      auth: { secret: required("TIDINGS_JWT_SECRET") },
      limits: { commandsPerSecond: 100_000, commandBurst: 100_000, connectionAttemptsPerSecondPerIp: 100_000 }
    }).pipe(Layer.provide(Runs.layer({ role, storage, runs: [Work] })), Layer.provide(Transports.layerConfig()))
    yield* Layer.build(server)
  }
  serve({}, { role, pid: process.pid, port }, Number(process.env.BENCH_DEADLINE_MS ?? 600_000))
  return yield* Effect.never
}).pipe(Effect.scoped)

NodeRuntime.runMain(main)
