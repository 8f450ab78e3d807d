/**
 * The tidings server under test, in its own process: Server.layer with the bench protocol (echo command), HS256
 * auth, the chosen transport (memory, or a private Redis/NATS whose URL the orchestrator passes), bound to
 * 127.0.0.1, and the bench publisher (publisher.ts) publishing through `publishUnknown` like an application.
 *
 * Limits are the defaults except those that only exist to stop one abusive peer and that a load generator on one
 * IP trips by design: connection attempts per IP, connections per user, command rate, replay length. The outbound
 * bound (slow-consumer close) and the retention (10,000 entries per channel; more only when a resume scenario
 * misses more, `--retention`) stay at their defaults. Orchestrated through ipc.ts by bench/run.ts; standalone
 * (`--standalone`, for k6 users) it prints its URL and publishes `--publish-rate` ticks per second to
 * bench:fanout until stopped. With `--server-processes N` it is one of N processes forked by primary.ts (a
 * node:cluster worker, with ProcessGroup.layer), and tells the primary its index when ready.
 */
import cluster from "node:cluster"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import type { Position } from "../src/protocol/Position.ts"
import { INDEX_ENV } from "../src/server/processes/Messages.ts"
import * as ProcessGroup from "../src/server/processes/ProcessGroup.ts"
import * as Server from "../src/server/Server.ts"
import * as Memory from "../src/transports/Memory.ts"
import { defaultRetention, type Transport, type TransportOptions } from "../src/transports/Transport.ts"
import { flag, serve } from "./ipc.ts"
import { settledRss } from "./memory.ts"
import { fdLimit } from "./procstat.ts"
import { BenchProtocol, benchApiKey, benchSecret, fanoutChannel, nowMs, personalChannelOf } from "./protocol.ts"
import { Publisher } from "./publisher.ts"

const transportName = flag("transport", "memory")!
const port = Number(flag("port", "0"))
const runId = flag("run-id", String(process.pid))!
const deadlineMs = Number(flag("deadline-ms", "600000"))
const standalone = process.argv.includes("--standalone")

/** Entries kept per channel: the default (10,000) unless a resume scenario misses more. */
const maxEntries = Number(flag("retention", String(defaultRetention.maxEntries)))
const transportOptions: TransportOptions = {
  retention: (channel) =>
    channel.startsWith("bench:append:") ? defaultRetention : { maxEntries, maxAgeMs: defaultRetention.maxAgeMs }
}

const transportLayer = async (): Promise<Layer.Layer<Transport, unknown>> => {
  switch (transportName) {
    case "memory":
      return Memory.layer(transportOptions)
    case "redis": {
      const Redis = await import("../src/transports/Redis.ts")
      return Redis.layer({ ...transportOptions, url: flag("redis-url")!, keyPrefix: `bench-${runId}:` })
    }
    case "nats":
    case "nats-jsparser": {
      const Nats = await import("../src/transports/Nats.ts")
      return Nats.layer({
        ...transportOptions,
        fastParser: transportName === "nats",
        url: flag("nats-url")!,
        stream: `BENCH_${runId.replace(/[^A-Za-z0-9_-]/g, "_")}`,
        subjectPrefix: `bench.${runId.replace(/[^A-Za-z0-9_-]/g, "_")}`,
        streamRetention: {
          maxEntries: Math.max(maxEntries, defaultRetention.maxEntries),
          maxAgeMs: defaultRetention.maxAgeMs
        }
      })
    }
    default:
      throw new Error(`unknown transport ${transportName}`)
  }
}

// `--backlog N`: the accept queue length (Server.ts defaults to 4096)
const backlog = flag("backlog")

const layer = Server.layer({
  protocol: BenchProtocol,
  handlers: { echo: (payload) => Effect.succeed(payload) },
  auth: { secret: benchSecret },
  host: "127.0.0.1",
  port,
  ...(backlog ? { backlog: Number(backlog) } : {}),
  apiKey: benchApiKey,
  limits: {
    maxConnections: 100_000,
    maxConnectionsPerUser: 1_000_000,
    connectionAttemptsPerSecondPerIp: 1_000_000,
    commandsPerSecond: 1_000_000,
    commandBurst: 1_000_000,
    maxReplayEntries: 1_000_000
  }
}).pipe(
  Layer.provide(await transportLayer()),
  // one of several processes (primary.ts forked it): the node's readiness and metrics cover all of them
  Layer.provide(cluster.isWorker ? ProcessGroup.layer : Layer.empty)
)

const scope = Effect.runSync(Scope.make())
const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
const server = Context.get(context, Server.TidingsServer)
const sync = transportName === "memory"

/** The newest offset each channel reached through this publisher (the resume scenarios check against it). */
const tops = new Map<string, number>()
const noteTop = (channel: string, position: Position) => {
  if (position.offset > (tops.get(channel) ?? 0)) tops.set(channel, position.offset)
}

/** Runs a publish; a memory append completes synchronously, so only broker transports hand back a Promise. */
const run = (channel: string, effect: Effect.Effect<Position, unknown>): undefined | Promise<unknown> => {
  if (!sync) return Effect.runPromise(effect).then((position) => noteTop(channel, position))
  Effect.runFork(effect).addObserver((exit) => {
    if (Exit.isSuccess(exit)) noteTop(channel, exit.value)
    else publisher.failed++
  })
  return undefined
}

const publisher = new Publisher({
  publish: (target, data) => {
    const channel = target < 0 ? fanoutChannel : personalChannelOf(target)
    return run(channel, server.publishUnknown(channel, "tick", data))
  }
})

/** Appends per second through the publish path (validation, encoding, transport append), many in flight. */
const appendRate = (args: { durationMs: number; inFlight: number; channels: number }) =>
  new Promise<{ appends: number; failed: number; ms: number }>((resolve) => {
    const started = nowMs()
    const end = started + args.durationMs
    const data = { s: 0, i: 0, t: 0, m: 0, p: "x".repeat(50) }
    let inFlight = 0
    let done = 0
    let failed = 0
    let k = 0
    let waiting = false
    const finish = () => {
      if (inFlight === 0 && nowMs() >= end) resolve({ appends: done, failed, ms: nowMs() - started })
    }
    const pump = () => {
      waiting = false
      if (nowMs() >= end) return finish()
      let launched = 0
      while (inFlight < args.inFlight && launched < 512) {
        inFlight++
        launched++
        const channel = `bench:append:${k++ % args.channels}`
        Effect.runFork(server.publishUnknown(channel, "tick", data)).addObserver((exit) => {
          inFlight--
          if (Exit.isSuccess(exit)) done++
          else failed++
          if (nowMs() >= end) finish()
          else if (waiting) setImmediate(pump)
        })
      }
      if (inFlight >= args.inFlight) waiting = true
      else setImmediate(pump)
    }
    pump()
  })

const stats = () => {
  const s = server.stats
  const memory = process.memoryUsage()
  return {
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    connections: server.connections(),
    deliveries: s.deliveries,
    replayed: s.replayed,
    published: s.published,
    messagesOut: s.messagesOut,
    framesOut: s.framesOut,
    bytesOut: s.bytesOut,
    slowConsumerCloses: s.slowConsumerCloses,
    sseOpen: s.sseOpen,
    sseDeliveries: s.sseDeliveries,
    sseSlowReaders: s.sseSlowReaders,
    closed: Object.fromEntries(s.connectionsClosed),
    refused: Object.fromEntries(s.upgradesRefused),
    errors: Object.fromEntries(s.errors),
    publishFailures: publisher.failed
  }
}

const shutdown = () => Effect.runPromise(Scope.close(scope, Exit.void))

// one of a group: the primary stops its processes with SIGTERM; exit through process.exit (within 3 s) so that a
// --cpu-prof profile gets written
if (cluster.isWorker) {
  process.on("SIGTERM", () => {
    setTimeout(() => process.exit(0), 3000).unref()
    void shutdown().finally(() => process.exit(0))
  })
}

if (standalone) {
  const rate = Number(flag("publish-rate", "10"))
  process.stdout.write(`tidings bench server on ${server.url} (transport ${transportName}); secret "${benchSecret}"\n`)
  process.stdout.write(`publishing ${rate} ticks/s to ${fanoutChannel}; Ctrl-C stops\n`)
  let step = 1
  const loop = async () => {
    for (;;)
      await publisher.paced({ step: step++, rate, durationMs: 60_000, warmupMs: 0, targets: 0, payloadBytes: 100 })
  }
  if (rate > 0) void loop()
  process.on("SIGINT", () => shutdown().then(() => process.exit(0)))
  process.on("SIGTERM", () => shutdown().then(() => process.exit(0)))
} else {
  serve(
    {
      stats,
      gcRss: settledRss,
      ...publisher.commands(),
      appendRate,
      top: (args: { channel?: string }) => ({ offset: tops.get(args.channel ?? fanoutChannel) ?? 0 })
    },
    {
      kind: "tidings",
      port: server.port,
      pid: process.pid,
      process: Number(process.env[INDEX_ENV] ?? 0),
      transport: transportName,
      fdLimit: fdLimit()
    },
    deadlineMs,
    shutdown
  )
}
