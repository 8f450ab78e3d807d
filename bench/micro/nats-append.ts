/**
 * Micro-benchmark of the NATS JetStream transport against a private nats-server (free port, temporary store):
 * appends per second to one channel (each append waits for its predecessor's ack: offsets stay contiguous; also
 * with the event loop kept busy 8 ms of every 10, as a server in the middle of fan-out passes), to
 * many channels at once (pipelined over the one connection), live deliveries to a listener on another
 * transport instance, and replay (entries per second read back by position, in one read and, as the server
 * replays to a resuming client, in pages of 1000 — several rounds, each timed).
 *
 * It measures Nats.ts only — no sockets to clients, no protocol encoding. The nats-server runs in its own
 * process; the client and the transport share this one.
 * Run: npx tsx bench/micro/nats-append.ts [appends per scenario (default 20,000)] [channels (default 256)]
 *      [stream storage: file (default) | memory]
 */
import { Effect } from "effect"
import * as Nats from "../../src/transports/Nats.ts"
import type { Publication, TransportShape } from "../../src/transports/Transport.ts"
import { startNatsServer } from "../../test/support/natsServer.ts"
import { requireBinary } from "../../test/support/requireBinary.ts"

const total = Number(process.argv[2] ?? 20_000)
const channelCount = Number(process.argv[3] ?? 256)
const storage: "file" | "memory" = process.argv[4] === "memory" ? "memory" : "file"
const publication: Publication = {
  event: "tick",
  data: '{"n":1,"text":"hello from the benchmark"}',
  version: 1,
  time: 0
}

const rate = (count: number, ms: number) => `${Math.round((count / ms) * 1000).toLocaleString("en-US")}/s`

const timed = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const start = performance.now()
    const value = yield* effect
    return { value, ms: performance.now() - start }
  })

const appendMany = (t: TransportShape, channel: string, count: number) =>
  Effect.gen(function* () {
    for (let i = 0; i < count; i++) yield* t.append(channel, publication)
  })

const program = (url: string) =>
  Effect.gen(function* () {
    const options = {
      url,
      stream: "BENCH",
      subjectPrefix: "bench",
      streamRetention: { maxEntries: 100_000, maxAgeMs: 3_600_000 },
      storage
    }
    const t = yield* Nats.make(options)
    const listenerNode = yield* Nats.make(options)

    yield* appendMany(t, "warmup", 2000)

    const one = Math.min(total, 10_000)
    const single = yield* timed(appendMany(t, "single", one))
    console.log(
      `one channel, each append awaited:      ${one.toLocaleString("en-US")} appends, ${rate(one, single.ms)}`
    )
    // a server fanning out spends long stretches in flush passes; each append's ack then waits for the loop
    const busy = setInterval(() => {
      const end = performance.now() + 8
      while (performance.now() < end);
    }, 10)
    const loaded = yield* timed(appendMany(t, "single-busy", Math.min(total, 2_000)))
    clearInterval(busy)
    console.log(
      `the same, loop busy 8 ms of every 10:   ${Math.min(total, 2_000).toLocaleString("en-US")} appends, ${rate(Math.min(total, 2_000), loaded.ms)}`
    )

    const perChannel = Math.max(1, Math.floor(total / channelCount))
    const count = perChannel * channelCount
    const manyChannels = (label: string) => Array.from({ length: channelCount }, (_, i) => `${label}-${i}`)
    const quiet = manyChannels("quiet")
    const many = yield* timed(
      Effect.forEach(quiet, (channel) => appendMany(t, channel, perChannel), { concurrency: "unbounded" })
    )
    console.log(
      `${channelCount} channels concurrently:              ${count.toLocaleString("en-US")} appends, ${rate(count, many.ms)}`
    )

    const heard = manyChannels("heard")
    let delivered = 0
    for (const channel of heard) yield* listenerNode.listen(channel, () => void delivered++)
    const withListener = yield* timed(
      Effect.forEach(heard, (channel) => appendMany(t, channel, perChannel), { concurrency: "unbounded" })
    )
    const waitStart = performance.now()
    while (delivered < count && performance.now() - waitStart < 30_000) yield* Effect.sleep(5)
    const endToEnd = withListener.ms + (performance.now() - waitStart)
    console.log(
      `same, a listener node in this process:  ${count.toLocaleString("en-US")} appends, ${rate(count, withListener.ms)}; ${delivered.toLocaleString("en-US")} delivered, ${rate(delivered, endToEnd)} end to end`
    )

    // Replay: a channel of 10,000 entries interleaved in the stream with another channel.
    const replayCount = 10_000
    const replayPage = 1000
    const replayRounds = 7
    yield* Effect.forEach(["replay", "noise"], (channel) => appendMany(t, channel, replayCount), { concurrency: 2 })
    for (let round = 1; round <= 3; round++) {
      const all = yield* timed(t.read("replay", undefined, replayCount))
      console.log(
        `replay in one read (round ${round}):         ${all.value.entries.length.toLocaleString("en-US")} entries in ${all.ms.toFixed(0)} ms, ${rate(all.value.entries.length, all.ms)}`
      )
    }
    const epoch = (yield* t.top("replay")).epoch
    const pagedMs: Array<number> = []
    const pagedCpuMs: Array<number> = []
    for (let round = 1; round <= replayRounds; round++) {
      const cpu = process.cpuUsage()
      const paged = yield* timed(
        Effect.gen(function* () {
          let after = 0
          let read = 0
          while (after < replayCount) {
            const page = yield* t.read("replay", { epoch, offset: after }, replayPage)
            read += page.entries.length
            after = page.entries[page.entries.length - 1]!.offset
          }
          return read
        })
      )
      if (paged.value !== replayCount) throw new Error(`paged replay read ${paged.value} entries`)
      pagedMs.push(paged.ms)
      const used = process.cpuUsage(cpu)
      pagedCpuMs.push((used.user + used.system) / 1000)
    }
    const best = Math.min(...pagedMs)
    console.log(
      `replay in pages of ${replayPage} (${replayRounds} rounds):      ${replayCount.toLocaleString("en-US")} entries in ${pagedMs.map((ms) => ms.toFixed(0)).join(", ")} ms; best ${rate(replayCount, best)}, worst ${rate(replayCount, Math.max(...pagedMs))}`
    )
    // The CPU this process spent (client and transport; the server has its own), less disturbed by other load.
    console.log(`  CPU of this process per round:        ${pagedCpuMs.map((ms) => ms.toFixed(0)).join(", ")} ms`)
    const resume = yield* timed(
      Effect.gen(function* () {
        for (let i = 0; i < 200; i++) yield* t.read("replay", { epoch, offset: replayCount - 1 - (i % 5) }, 300)
      })
    )
    console.log(`resume near the top (read 1–5 entries): ${(resume.ms / 200).toFixed(2)} ms per read`)
  })

const binary = requireBinary("nats-server", "bench/micro/nats-append")
if (binary !== undefined) {
  const server = await startNatsServer({ binary })
  try {
    console.log(`nats-server ${server.url} (${storage} storage, store ${server.storeDir}), Node ${process.version}`)
    await Effect.runPromise(Effect.scoped(program(server.url)))
  } finally {
    await server.close()
  }
}
