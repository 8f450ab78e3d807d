/**
 * What replication costs a publish: the latency of the transport's `append` (Transport.ts), measured in this
 * process against private brokers on 127.0.0.1, for
 *
 * - NATS: one private 3-server cluster (test/support/natsCluster.ts) and two streams on it, created by the
 *   transport with `replicas: 1` and with `replicas: 3` (the default on such a cluster);
 * - Redis: a private primary and one replica (`REPLICAOF`, test/support/redisServer.ts), the transport without
 *   and with `replicatedAcks: { replicas: 1, timeoutMs: 1000 }` (WAIT 1 after every append script).
 *
 * Each case runs `--concurrency` publishers at once (1: sequential; 16: sixteen in flight), each on its own
 * channel, each awaiting its append before the next, until `--appends` appends in all or `--seconds` elapsed.
 * Cases alternate for `--rounds` rounds so a noisy moment hits both sides. Prints, per case, p50/p99/max of an
 * append (ms) and appends per second, as a table and as JSON. It measures the transport only: no sockets to
 * clients, no HTTP; the brokers run in their own processes, the transport in this one.
 *
 *   node --import tsx bench/replication.ts [--appends 2000] [--seconds 15] [--concurrency 1,16] [--rounds 2]
 *                                          [--brokers nats,redis]
 */
import { randomUUID } from "node:crypto"
import { cpus } from "node:os"
import { parseArgs } from "node:util"
import { Effect, type Scope } from "effect"
import * as Nats from "../src/transports/Nats.ts"
import * as Redis from "../src/transports/Redis.ts"
import type { Publication, TransportError, TransportShape } from "../src/transports/Transport.ts"
import { type NatsCluster, startNatsCluster } from "../test/support/natsCluster.ts"
import { type RedisServer, startRedisServer } from "../test/support/redisServer.ts"
import { findBinary } from "../test/support/requireBinary.ts"
import * as Histogram from "./histogram.ts"

const { values } = parseArgs({
  options: {
    appends: { type: "string", default: "2000" },
    seconds: { type: "string", default: "15" },
    concurrency: { type: "string", default: "1,16" },
    rounds: { type: "string", default: "2" },
    brokers: { type: "string", default: "nats,redis" }
  }
})
const appends = Number(values.appends)
const seconds = Number(values.seconds)
const concurrencies = values.concurrency.split(",").map(Number)
const rounds = Number(values.rounds)
const brokers = values.brokers.split(",")
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const unique = () => randomUUID().replaceAll("-", "").slice(0, 8)

const data = JSON.stringify({ user: "u-123", text: "hello world, a small message of about one hundred bytes.", n: 1 })
const publication: Publication = { event: "message", data, version: 1, time: 1_700_000_000_000 }

/** A transport under test, built in the bench's scope. */
interface Case {
  readonly label: string
  readonly transport: TransportShape
  /** Printed beside the figures (e.g. which server leads the stream). */
  readonly note: () => Promise<string>
}

interface Figure {
  readonly case: string
  readonly round: number
  readonly concurrency: number
  readonly appends: number
  readonly ms: number
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
  readonly max: number
  readonly note: string
}

/** `concurrency` publishers, each on its own channel, until `appends` in all or `seconds` elapsed. */
const measure = (c: Case, round: number, concurrency: number): Effect.Effect<Figure, TransportError> =>
  Effect.gen(function* () {
    const tag = unique()
    const histogram = Histogram.make()
    // warm-up: the channels exist, the script or stream lookup is cached
    yield* Effect.forEach(
      Array.from({ length: concurrency }, (_, i) => i),
      (i) => Effect.repeat(c.transport.append(`warm-${tag}-${i}`, publication), { times: 20 }),
      { concurrency, discard: true }
    )
    let started = 0
    const begun = performance.now()
    const deadline = begun + seconds * 1000
    const publisher = (i: number) =>
      Effect.gen(function* () {
        while (started < appends && performance.now() < deadline) {
          started++
          const t0 = performance.now()
          yield* c.transport.append(`bench-${tag}-${i}`, publication)
          histogram.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)))
        }
      })
    yield* Effect.forEach(
      Array.from({ length: concurrency }, (_, i) => i),
      publisher,
      { concurrency, discard: true }
    )
    const ms = performance.now() - begun
    const summary = Histogram.summarize(histogram)
    histogram.destroy()
    const note = yield* Effect.promise(c.note)
    return {
      case: c.label,
      round,
      concurrency,
      appends: summary.count,
      ms: Math.round(ms),
      perSecond: Math.round((summary.count / ms) * 1000),
      p50: summary.p50,
      p99: summary.p99,
      max: summary.max,
      note
    }
  })

const natsCases = (cluster: NatsCluster): Effect.Effect<Array<Case>, TransportError, Scope.Scope> =>
  Effect.forEach([1, 3], (replicas) =>
    Effect.gen(function* () {
      const stream = `BENCH_R${replicas}_${unique()}`
      const transport = yield* Nats.make({
        servers: cluster.urls.split(","),
        stream,
        subjectPrefix: `bench.r${replicas}_${unique()}`,
        replicas,
        streamRetention: { maxEntries: 100_000, maxAgeMs: 3_600_000 }
      })
      return {
        label: `NATS, stream replicas ${replicas}`,
        transport,
        note: async () => `stream leader ${(await cluster.leaderOf(stream)) ?? "?"}`
      }
    })
  )

const redisCases = (
  primary: RedisServer,
  replica: RedisServer
): Effect.Effect<Array<Case>, TransportError, Scope.Scope> =>
  Effect.forEach([false, true], (wait) =>
    Effect.gen(function* () {
      const transport = yield* Redis.make({
        url: primary.url,
        keyPrefix: `bench-${unique()}:`,
        ...(wait ? { replicatedAcks: { replicas: 1, timeoutMs: 1000 } } : {})
      })
      return {
        label: wait ? "Redis, replicatedAcks (WAIT 1)" : "Redis, default (no WAIT)",
        transport,
        // WAIT needs the replica online; its reported offset lags by up to a second (REPLCONF ACK), so no lag here
        note: async () => {
          const info = String(await replica.command("INFO", "replication"))
          return `replica link ${/master_link_status:(\w+)/.exec(info)?.[1] ?? "?"}`
        }
      }
    })
  )

/** A primary and a replica of it, once the replica reports its link up and synced. */
const startReplicatedRedis = async (binary: string) => {
  const primary = await startRedisServer(binary)
  const replica = await startRedisServer(binary)
  await replica.command("REPLICAOF", "127.0.0.1", primary.port)
  const deadline = Date.now() + 15_000
  while (!/master_link_status:up/.test(String(await replica.command("INFO", "replication")))) {
    if (Date.now() > deadline) throw new Error("the Redis replica did not sync within 15 s")
    await sleep(100)
  }
  return { primary, replica }
}

const table = (figures: ReadonlyArray<Figure>) => {
  const rows = figures.map((f) => [
    f.case,
    String(f.round),
    String(f.concurrency),
    f.appends.toLocaleString("en-US"),
    f.perSecond.toLocaleString("en-US"),
    f.p50.toFixed(2),
    f.p99.toFixed(2),
    f.max.toFixed(2),
    f.note
  ])
  const head = ["case", "round", "in flight", "appends", "appends/s", "p50 ms", "p99 ms", "max ms", "note"]
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join("  ")
  return [line(head), ...rows.map(line)].join("\n")
}

const run = (cases: ReadonlyArray<Case>) =>
  Effect.gen(function* () {
    const figures: Array<Figure> = []
    for (let round = 1; round <= rounds; round++) {
      for (const concurrency of concurrencies) {
        // alternate which case goes first, so neither always follows the other's load
        const order = round % 2 === 1 ? cases : [...cases].reverse()
        for (const c of order) figures.push(yield* measure(c, round, concurrency))
      }
    }
    return figures
  })

const main = async () => {
  const startedAt = new Date().toISOString()
  const figures: Array<Figure> = []
  if (brokers.includes("nats")) {
    const binary = findBinary("nats-server")
    if (binary === undefined) throw new Error("nats-server not found: apt-get install -y nats-server")
    const cluster = await startNatsCluster({ binary })
    try {
      await cluster.ready()
      figures.push(...(await Effect.runPromise(Effect.scoped(Effect.flatMap(natsCases(cluster), run)))))
    } finally {
      await cluster.close()
    }
  }
  if (brokers.includes("redis")) {
    const binary = findBinary("redis-server")
    if (binary === undefined) throw new Error("redis-server not found: apt-get install -y redis-server")
    const { primary, replica } = await startReplicatedRedis(binary)
    try {
      figures.push(...(await Effect.runPromise(Effect.scoped(Effect.flatMap(redisCases(primary, replica), run)))))
    } finally {
      await replica.dispose()
      await primary.dispose()
    }
  }
  console.log(
    `\nappend latency with and without replication; started ${startedAt}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"})`
  )
  console.log(`up to ${appends} appends or ${seconds} s per case, ${rounds} round(s)\n`)
  console.log(table(figures))
  console.log(`\n${JSON.stringify({ startedAt, appends, seconds, rounds, figures })}`)
}

await main()
