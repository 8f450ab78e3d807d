#!/usr/bin/env node
/**
 * The `tidings` command. `tidings serve` runs a standalone server speaking the built-in agent protocol, hosting
 * the simulated agent as a durable run (a development stand-in; applications embed the Layers with their own
 * runs and handlers). `--role` picks what the process does: `gateway` (sockets, HTTP, auth; commands runs),
 * `worker` (executes runs; only /healthz, /readyz and /metrics on its port) or `all` (both, the default). Roles
 * other than `all` need a database (`--database-url`), which the processes share.
 * Configured by environment variables, which flags override (`tidings serve --help`).
 * `--processes N` runs N such processes behind the port (src/bin/processes.ts, src/server/processes).
 * SIGTERM/SIGINT shut down gracefully (goaway, flush, close 1001) and exit 0; a failed start exits 1; a bad
 * combination of options exits 2.
 */
import { writeSync } from "node:fs"
import { parseArgs } from "node:util"
import { Cause, ConfigProvider, Context, Effect, Exit, Layer, Logger, Option, References } from "effect"
import { SignJWT } from "jose"
import { agentPresence } from "../agent/Presence.ts"
import * as SimulatedAgent from "../agent/SimulatedAgent.ts"
import * as BridgeConfig from "../bridges/BridgeConfig.ts"
import { Bridges, layer as bridgesLayer } from "../bridges/Bridges.ts"
import { AgentProtocol } from "../protocol/agent/index.ts"
import type { Storage } from "../runs/RunsLayer.ts"
import { RunsStatus } from "../runs/RunsStatus.ts"
import { anonymousOf, ServeConfig } from "../server/Config.ts"
import { StatusServer } from "../server/http/index.ts"
import * as ProcessGroup from "../server/processes/ProcessGroup.ts"
import * as Server from "../server/Server.ts"
import * as Tracing from "../server/Tracing.ts"
import * as Transports from "../transports/fromConfig.ts"
import { Transport } from "../transports/Transport.ts"
import * as Processes from "./processes.ts"

const usage = `Usage: tidings serve [options]
       tidings bridge --bridges FILE [options]   run the bridges of FILE on their own (docs/bridges.md);
                                                 status on --port (/healthz, /readyz, /metrics)

Options (each also an environment variable):
  --role R              TIDINGS_ROLE             gateway | worker | all (default all); gateway and worker
                                                 need --database-url
  --port N              TIDINGS_PORT             listen port (default 4000; a worker serves only
                                                 /healthz, /readyz and /metrics there)
  --host H              TIDINGS_HOST             bind address (default 127.0.0.1)
  --backlog N           TIDINGS_BACKLOG          accept queue length (default 4096, capped by net.core.somaxconn)
  --processes N         TIDINGS_PROCESSES        server processes behind the port (default 1): N full
                                                 nodes on one port under a supervising primary; needs
                                                 --transport redis or nats; /readyz is 200 only while all
                                                 N are ready, /metrics sums them; a crashed one restarts
  --balancing B         TIDINGS_PROCESS_BALANCING  how the processes share the port: kernel (each listens
                                                 with SO_REUSEPORT; Node 22.12+ on Linux) or primary (the primary
                                                 accepts and hands over); default kernel where available
  --transport T         TIDINGS_TRANSPORT        memory | redis | nats (default memory)
  --redis-url URL       REDIS_URL                Redis for --transport redis
  --nats-url URL        NATS_URL                 NATS for --transport nats
  --database-url URL    TIDINGS_DATABASE_URL     PostgreSQL for runs shared by processes (default: none,
                                                 runs in memory, ending with the process)
  --runner-host H       TIDINGS_RUNNER_HOST      address other processes reach this worker at (default
                                                 127.0.0.1)
  --runner-port N       TIDINGS_RUNNER_PORT      this worker's cluster port (default 34431)
  --jwt-secret S        TIDINGS_JWT_SECRET       HS256 secret for client tokens
  --jwks-url URL        TIDINGS_JWKS_URL         JWKS for asymmetric client tokens
  --api-key K           TIDINGS_API_KEY          key for POST /v1/channels/:channel/events
  --anonymous PATTERNS  TIDINGS_ANONYMOUS_CHANNELS  allow anonymous clients to read these channel patterns
  --bridges FILE        TIDINGS_BRIDGES          run the bridges configured in FILE in this process
  --cors-origins LIST   TIDINGS_CORS_ORIGINS     origins whose pages may use SSE, presence and publish (or *)
  --presence PATTERN    TIDINGS_PRESENCE         channels whose viewers are tracked and announced as
                                                 user_activity (default run:*; off for none)
  --env E               TIDINGS_ENV              development (default) | production
  --log-level L         TIDINGS_LOG_LEVEL        Trace | Debug | Info | Warn | Error (default Info)

Runs (environment only): TIDINGS_RUNS_START_TIMEOUT_MS (5000: a start no worker began by then answers
unavailable), TIDINGS_RUNS_LOCK_EXPIRATION_MS (6000: a killed worker's runs move to another after about this
long) and TIDINGS_RUNS_LOCK_REFRESH_MS (2000): a worker's heartbeat; TIDINGS_AGENT_BEAT_MS (250) and TIDINGS_AGENT_STEPS (5): the simulated agent's pace.

Traces (environment only): TIDINGS_OTLP_URL, an OTLP/HTTP collector (http://host:4318): connections, commands, runs,
publishes and fan-out as OpenTelemetry spans, service tidings-<role>. Unset (the default), no spans are made.
`

const flagToEnv: Record<string, string> = {
  role: "TIDINGS_ROLE",
  port: "TIDINGS_PORT",
  host: "TIDINGS_HOST",
  backlog: "TIDINGS_BACKLOG",
  processes: "TIDINGS_PROCESSES",
  balancing: "TIDINGS_PROCESS_BALANCING",
  transport: "TIDINGS_TRANSPORT",
  "redis-url": "REDIS_URL",
  "nats-url": "NATS_URL",
  "database-url": "TIDINGS_DATABASE_URL",
  "runner-host": "TIDINGS_RUNNER_HOST",
  "runner-port": "TIDINGS_RUNNER_PORT",
  "jwt-secret": "TIDINGS_JWT_SECRET",
  "jwks-url": "TIDINGS_JWKS_URL",
  "api-key": "TIDINGS_API_KEY",
  anonymous: "TIDINGS_ANONYMOUS_CHANNELS",
  presence: "TIDINGS_PRESENCE",
  bridges: "TIDINGS_BRIDGES",
  "cors-origins": "TIDINGS_CORS_ORIGINS",
  env: "TIDINGS_ENV",
  "log-level": "TIDINGS_LOG_LEVEL"
}

const parsed = parseArgs({
  allowPositionals: true,
  options: {
    help: { type: "boolean", short: "h" },
    ...Object.fromEntries(Object.keys(flagToEnv).map((k) => [k, { type: "string" as const }]))
  }
})
const [commandName] = parsed.positionals
const commands = ["serve", "bridge"]
if (parsed.values.help || !commands.includes(commandName ?? "")) {
  process.stdout.write(usage)
  process.exit(commands.includes(commandName ?? "") || parsed.values.help ? 0 : 2)
}
const fromFlags: Record<string, string> = {}
for (const [flag, env] of Object.entries(flagToEnv)) {
  const value = parsed.values[flag as keyof typeof parsed.values]
  if (typeof value === "string") fromFlags[env] = value
}

const isLoopback = (host: string) => host === "127.0.0.1" || host === "localhost" || host === "::1"

/** Where runs live: shared PostgreSQL when a database is configured, else this process's memory. Process k of
 * several listens for other runners on --runner-port + k. */
const storageOf = (config: ServeConfig): Storage =>
  Option.match(config.databaseUrl, {
    onNone: () => ({ kind: "memory" }),
    onSome: (url) => ({
      kind: "postgres",
      url,
      runner: { host: config.runnerHost, port: config.runnerPort + Processes.processIndex() },
      shardLockExpirationMs: config.runs.shardLockExpirationMs,
      shardLockRefreshMs: config.runs.shardLockRefreshMs
    })
  })

const runsOf = (config: ServeConfig) =>
  SimulatedAgent.runs({
    role: config.role,
    storage: storageOf(config),
    beatMs: config.agent.beatMs,
    steps: config.agent.steps,
    gateway: { startTimeoutMs: config.runs.startTimeoutMs }
  })

/** A worker: executes runs, publishes their events; no sockets, only the status endpoint. */
const serveWorker = (config: ServeConfig) =>
  Effect.scoped(
    Effect.gen(function* () {
      const context = yield* Layer.build(Layer.provideMerge(runsOf(config), Transports.layerConfig()))
      const runs = Context.get(context, RunsStatus)
      const { port } = yield* StatusServer.make({
        host: config.host,
        port: config.port,
        transport: Context.get(context, Transport),
        runs
      })
      yield* Effect.logInfo(
        `tidings worker ${runs.worker} executing runs (status on http://${config.host}:${port}/readyz; env ${config.env})`
      )
      return yield* Effect.never
    })
  )

/** The bridges of TIDINGS_BRIDGES (checked at start), on the configured transport; none without it. */
const bridgesFrom = (path: string) =>
  Layer.unwrap(Effect.map(BridgeConfig.load(path), (file) => bridgesLayer(AgentProtocol, file)))
const bridgesOf = (config: ServeConfig) =>
  Option.match(config.bridges, { onNone: () => Layer.empty, onSome: bridgesFrom })

/** `tidings bridge`: bridges on their own; no sockets, only the status endpoint. */
const serveBridges = (config: ServeConfig) =>
  Effect.scoped(
    Effect.gen(function* () {
      if (Option.isNone(config.bridges)) {
        return yield* Effect.fail(new Error("tidings bridge needs --bridges FILE (or TIDINGS_BRIDGES)"))
      }
      const context = yield* Layer.build(
        Layer.provideMerge(bridgesFrom(config.bridges.value), Transports.layerConfig())
      )
      const bridges = Context.get(context, Bridges)
      const { port } = yield* StatusServer.make({
        host: config.host,
        port: config.port,
        transport: Context.get(context, Transport),
        bridges
      })
      yield* Effect.logInfo(
        `tidings bridge running ${bridges.stats.map((s) => s.name).join(", ")} (status on http://${config.host}:${port}/readyz)`
      )
      return yield* Effect.never
    })
  )

const serve = Effect.gen(function* () {
  const config = yield* ServeConfig
  if (commandName === "bridge") return yield* serveBridges(config)
  if (config.role === "worker") return yield* serveWorker(config)
  const member = Processes.isGroupMember()
  let secret = Option.getOrUndefined(config.jwtSecret)
  const jwksUrl = Option.getOrUndefined(config.jwksUrl)
  let anonymous = anonymousOf(config)
  let devToken: string | undefined
  if (!secret && !jwksUrl) {
    if (config.env === "production" && !anonymous) {
      return yield* Effect.fail(
        "production needs TIDINGS_JWT_SECRET or TIDINGS_JWKS_URL (or TIDINGS_ANONYMOUS_CHANNELS for anonymous access)"
      )
    }
    if (config.env === "development") {
      secret = Processes.sharedDevSecret() ?? crypto.randomUUID() + crypto.randomUUID()
      devToken = yield* Effect.promise(() =>
        new SignJWT({ channels: ["*"], publish: ["*"] })
          .setProtectedHeader({ alg: "HS256" })
          .setSubject("developer")
          .setIssuedAt()
          .setExpirationTime("24h")
          .sign(new TextEncoder().encode(secret))
      )
      if (!anonymous && isLoopback(config.host)) anonymous = ["*"]
    }
  }
  const layer = Server.layer({
    protocol: AgentProtocol,
    handlers: SimulatedAgent.handlers,
    host: config.host,
    port: config.port,
    backlog: config.backlog,
    path: config.path,
    auth: {
      ...(secret ? { secret } : {}),
      ...(jwksUrl ? { jwksUrl } : {}),
      ...(Option.isSome(config.issuer) ? { issuer: config.issuer.value } : {}),
      ...(Option.isSome(config.audience) ? { audience: config.audience.value } : {}),
      ...(anonymous ? { anonymous: { channels: anonymous } } : {})
    },
    ...(Option.isSome(config.apiKey) ? { apiKey: config.apiKey.value } : {}),
    ...(Option.isSome(config.corsOrigins)
      ? { corsOrigins: config.corsOrigins.value.split(",").map((o) => o.trim()) }
      : {}),
    limits: config.limits,
    timing: config.timing,
    ...(config.presence === "off" || config.presence === "" ? {} : { presence: agentPresence(config.presence) }),
    traces: Option.isSome(config.otlpUrl)
  }).pipe(
    Layer.provide(runsOf(config)),
    Layer.provide(bridgesOf(config)),
    Layer.provide(Transports.layerConfig()),
    Layer.provide(member ? ProcessGroup.layer : Layer.empty)
  )

  yield* Effect.scoped(
    Effect.gen(function* () {
      const context = yield* Layer.build(layer)
      const server = Context.get(context, Server.TidingsServer)
      const where = Option.isSome(config.databaseUrl) ? "runs in PostgreSQL" : "runs in memory"
      const one = member ? `, process ${Processes.processIndex()} of ${config.processes}, pid ${process.pid}` : ""
      yield* Effect.logInfo(
        `tidings ${config.role === "all" ? "" : `${config.role} `}listening on ${server.url} (protocol agent v1, v2; ${where}; env ${config.env}${one})`
      )
      // several processes share one secret and token: the first prints it
      if (devToken && Processes.processIndex() === 0) {
        process.stdout.write(
          [
            "",
            "  ┌─ DEVELOPMENT MODE ─────────────────────────────────────────────────────────────",
            `  │ No TIDINGS_JWT_SECRET: a random secret was generated for this ${member ? "node's processes" : "process"}.`,
            anonymous ? `  │ Anonymous clients may read: ${anonymous.join(", ")} (loopback only).` : "  │",
            "  │ Development token (24 h, every channel):",
            `  │ ${devToken}`,
            "  │ Production (TIDINGS_ENV=production) refuses to start without a secret or JWKS.",
            "  └────────────────────────────────────────────────────────────────────────────────",
            ""
          ].join("\n")
        )
      }
      return yield* Effect.never
    })
  )
})

const main = Effect.gen(function* () {
  const config = yield* ServeConfig
  // the primary of several processes only supervises them (src/bin/processes.ts); each of them serves
  const program =
    config.processes > 1 && !Processes.isGroupMember()
      ? Effect.map(Processes.supervise(config, commandName ?? ""), (code) => {
          process.exitCode = code
        })
      : serve.pipe(
          Effect.provide(
            Option.isSome(config.otlpUrl)
              ? Tracing.layerOtlp({ url: config.otlpUrl.value, serviceName: `tidings-${config.role}` })
              : Layer.empty
          )
        )
  return yield* program.pipe(
    Effect.provideService(References.MinimumLogLevel, config.logLevel),
    Effect.provide(config.env === "production" ? Logger.layer([Logger.consoleJson]) : Layer.empty)
  )
}).pipe(
  Effect.provide(
    ConfigProvider.layer(ConfigProvider.orElse(ConfigProvider.fromEnvRecord(fromFlags), ConfigProvider.fromEnv()))
  ),
  Effect.catchCause((cause) => {
    if (Cause.hasInterruptsOnly(cause)) return Effect.interrupt
    const error = Cause.squash(cause)
    const message = typeof error === "string" ? error : error instanceof Error ? error.message : String(error)
    return Effect.sync(() => {
      writeSync(2, `tidings: ${message}\n`) // synchronous: the process exits right after
      process.exitCode = error instanceof Processes.UsageError ? 2 : 1
    })
  })
)

// SIGTERM/SIGINT interrupt the server, whose finalizer shuts down gracefully (goaway, flush, close 1001):
// that is a clean exit, code 0. A failure to start has already set exit code 1 (2 for a bad option); the primary
// of several processes sets its supervisor's code.
const fiber = Effect.runFork(main)
const stop = () => fiber.interruptUnsafe()
process.once("SIGTERM", stop)
process.once("SIGINT", stop)
fiber.addObserver((exit) => {
  const failed = Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)
  process.exit(failed ? 1 : Number(process.exitCode ?? 0))
})
