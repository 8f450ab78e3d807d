/**
 * Micro-benchmark of the Redis transport on a private redis-server: appends per second (one at a time, and with
 * many in flight to one channel and over 64 channels), appends with a live listener on the same node (end to end:
 * script → PUBLISH → subscriber → listener), and replay throughput of `read` in batches: all of a long channel,
 * and a resuming client's 10,000 entries, several times (best and median, as the machine may be shared).
 *
 *   npx tsx bench/micro/redis-append.ts [appends=100000] [inFlight=256] [readBatch=1000]
 *
 * One Node process runs both the publisher and the transport, so figures are client-bound (see
 * /work/shared/notes/delivery-design.md: Redis itself stays well under a core at these rates).
 */
import { cpus } from "node:os"
import { Effect } from "effect"
import * as Redis from "../../src/transports/Redis.ts"
import type { Entry, Publication } from "../../src/transports/Transport.ts"
import { startRedisServer } from "../../test/support/redisServer.ts"
import { findBinary } from "../../test/support/requireBinary.ts"

const total = Number(process.argv[2] ?? 100_000)
const inFlight = Number(process.argv[3] ?? 256)
const readBatch = Number(process.argv[4] ?? 1000)
const spreadChannels = 64
const resumeEntries = 10_000
const resumeRuns = 15

const binary = findBinary("redis-server")
if (binary === undefined) {
  console.error("redis-server not found: apt-get install -y redis-server")
  process.exit(1)
}

const data = JSON.stringify({ user: "u-123", text: "hello world, a small message of about one hundred bytes.", n: 1 })
const publication = (i: number): Publication => ({ event: "message", data, version: 1, time: 1_700_000_000_000 + i })

const rate = (count: number, ms: number) => Math.round((count / ms) * 1000)

const server = await startRedisServer(binary)
try {
  const program = Effect.gen(function* () {
    const t = yield* Redis.make({
      url: server.url,
      keyPrefix: "bench:",
      retention: () => ({ maxEntries: total * 2, maxAgeMs: 24 * 60 * 60 * 1000 })
    })
    const results: Array<{ scenario: string; count: number; ms: number; perSecond: number }> = []
    const record = (scenario: string, count: number, ms: number) =>
      results.push({ scenario, count, ms: Math.round(ms), perSecond: rate(count, ms) })

    // Warm-up: JIT, script cache, connections.
    yield* Effect.forEach(
      Array.from({ length: 5000 }, (_, i) => i),
      (i) => t.append("warmup", publication(i)),
      { concurrency: inFlight, discard: true }
    )

    const sequentialCount = Math.min(10_000, total)
    let started = performance.now()
    for (let i = 0; i < sequentialCount; i++) yield* t.append("sequential", publication(i))
    record("append, 1 in flight", sequentialCount, performance.now() - started)

    started = performance.now()
    yield* Effect.forEach(
      Array.from({ length: total }, (_, i) => i),
      (i) => t.append("pipelined", publication(i)),
      { concurrency: inFlight, discard: true }
    )
    record(`append, ${inFlight} in flight`, total, performance.now() - started)

    started = performance.now()
    yield* Effect.forEach(
      Array.from({ length: total }, (_, i) => i),
      (i) => t.append(`spread-${i % spreadChannels}`, publication(i)),
      { concurrency: inFlight, discard: true }
    )
    record(`append, ${inFlight} in flight over ${spreadChannels} channels`, total, performance.now() - started)

    let heard = 0
    let lastOffset = 0
    let ordered = true
    yield* t.listen("listened", (entry: Entry) => {
      heard++
      if (entry.offset !== lastOffset + 1) ordered = false
      lastOffset = entry.offset
    })
    started = performance.now()
    yield* Effect.forEach(
      Array.from({ length: total }, (_, i) => i),
      (i) => t.append("listened", publication(i)),
      { concurrency: inFlight, discard: true }
    )
    while (heard < total) yield* Effect.sleep(1)
    record(`append + live delivery to a listener, ${inFlight} in flight`, total, performance.now() - started)
    if (!ordered) console.error("live delivery was out of order!")

    started = performance.now()
    let since = { epoch: (yield* t.top("pipelined")).epoch, offset: 0 }
    let replayed = 0
    while (true) {
      const result = yield* t.read("pipelined", since, readBatch)
      if (result.entries.length === 0) break
      replayed += result.entries.length
      since = { epoch: since.epoch, offset: result.entries[result.entries.length - 1]!.offset }
    }
    record(`replay with read, batches of ${readBatch}`, replayed, performance.now() - started)

    // A resuming client: the last `resumeEntries` entries of a channel, page after page.
    const epoch = (yield* t.top("pipelined")).epoch
    const resumeFrom = Math.max(0, total - resumeEntries)
    const resumeMs: Array<number> = []
    for (let run = 0; run < resumeRuns; run++) {
      started = performance.now()
      let position = { epoch, offset: resumeFrom }
      while (position.offset < total) {
        const page = yield* t.read("pipelined", position, readBatch)
        position = { epoch, offset: page.entries[page.entries.length - 1]!.offset }
      }
      resumeMs.push(performance.now() - started)
    }
    resumeMs.sort((a, b) => a - b)
    const resumed = total - resumeFrom
    record(`replay ${resumed} after a position, batches of ${readBatch} (best of ${resumeRuns})`, resumed, resumeMs[0]!)
    record(`  (median of ${resumeRuns})`, resumed, resumeMs[Math.floor(resumeRuns / 2)]!)
    return results
  })
  const results = await Effect.runPromise(Effect.scoped(program))
  console.log(
    `Redis transport micro-benchmark (${cpus().length} cores, ${cpus()[0]?.model ?? "?"}, Node ${process.version})`
  )
  console.log(`payload ${data.length} bytes of data; private redis-server on ${server.url}`)
  console.table(results)
  // Redis-side cost per script call, to tell a client-bound run from a server-bound one.
  const stats = String(await server.command("INFO", "commandstats"))
  for (const line of stats.split("\r\n")) {
    const match = /^cmdstat_(evalsha|eval|publish):calls=(\d+),usec=(\d+),usec_per_call=([\d.]+)/.exec(line)
    if (match) console.log(`redis ${match[1]}: ${match[2]} calls, ${match[4]} µs per call inside Redis`)
  }
} finally {
  await server.dispose()
}
