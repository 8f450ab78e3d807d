/**
 * A process of the steps test application (stepsRun.ts) for the multi-process run tests, run as
 * `node --import tsx test/runs/support/node.ts`: `ROLE=gateway` embeds Server.layer with the steps protocol bound to
 * runs; `ROLE=worker` hosts the steps run and serves only /healthz, /readyz and /metrics. Both share PostgreSQL
 * (TIDINGS_DATABASE_URL) and the transport chosen by Transports.layerConfig (TIDINGS_TRANSPORT, REDIS_URL...).
 *
 * Environment: ROLE, TIDINGS_PORT, TIDINGS_JWT_SECRET (gateway), TIDINGS_RUNNER_PORT (worker), SIDE_EFFECTS and
 * STEP_MS (worker), LOG_LEVEL (Info), START_TIMEOUT_MS (gateway, default 5000), COMMAND_TIMEOUT_MS (gateway: the bound on
 * each engine call, default 3000), LOCK_EXPIRATION_MS (default: RunsLayer's).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Context, Effect, Layer, References } from "effect"
import * as Runs from "../../../src/runs/index.ts"
import * as StatusServer from "../../../src/server/http/StatusServer.ts"
import * as Server from "../../../src/server/Server.ts"
import * as Transports from "../../../src/transports/fromConfig.ts"
import { Transport } from "../../../src/transports/Transport.ts"
import { StepsProtocol, StepsRun, stepsHandlers, stepsWorker } from "./stepsRun.ts"

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback
  if (value === undefined) throw new Error(`test node: ${name} is required`)
  return value
}

const role = env("ROLE") as "gateway" | "worker"
const port = Number(env("TIDINGS_PORT"))
const storage: Runs.PostgresStorage = {
  kind: "postgres",
  url: env("TIDINGS_DATABASE_URL"),
  runner: { host: "127.0.0.1", port: Number(env("TIDINGS_RUNNER_PORT", "34431")) },
  ...(process.env.LOCK_EXPIRATION_MS ? { shardLockExpirationMs: Number(process.env.LOCK_EXPIRATION_MS) } : {})
}

const main = Effect.gen(function* () {
  if (role === "worker") {
    const runs = Runs.layer({
      role,
      storage,
      runs: [StepsRun],
      workers: [stepsWorker({ sideEffects: env("SIDE_EFFECTS"), stepMs: Number(env("STEP_MS", "200")) })]
    })
    const context = yield* Layer.build(Layer.provideMerge(runs, Transports.layerConfig()))
    yield* StatusServer.make({
      port,
      transport: Context.get(context, Transport),
      runs: Context.get(context, Runs.RunsStatus)
    })
    process.stdout.write(`${JSON.stringify({ worker: process.pid, port })}\n`)
    return yield* Effect.never
  }
  const server = Server.layer({
    protocol: StepsProtocol,
    handlers: stepsHandlers,
    port,
    auth: { secret: env("TIDINGS_JWT_SECRET") }
  }).pipe(
    Layer.provide(
      Runs.layer({
        role,
        storage,
        runs: [StepsRun],
        gateway: {
          startTimeoutMs: Number(env("START_TIMEOUT_MS", "5000")),
          commandTimeoutMs: Number(env("COMMAND_TIMEOUT_MS", "3000"))
        }
      })
    ),
    Layer.provide(Transports.layerConfig())
  )
  const context = yield* Layer.build(server)
  const tidings = Context.get(context, Server.TidingsServer)
  process.stdout.write(`${JSON.stringify({ listening: tidings.url, port: tidings.port })}\n`)
  return yield* Effect.never
}).pipe(Effect.scoped)

const level = (process.env.LOG_LEVEL ?? "Info") as "Info" | "Warn" | "Debug"
NodeRuntime.runMain(Effect.provideService(main, References.MinimumLogLevel, level))
