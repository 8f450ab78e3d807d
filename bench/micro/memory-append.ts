/**
 * Micro-benchmark of the in-memory transport's hot path: appends per second (one channel, default retention, so
 * the ring is trimming once full) and listener deliveries per second (one channel, many listeners).
 *
 * It measures only Memory.ts inside one Effect loop — no sockets, no encoding. Run: npx tsx bench/micro/memory-append.ts
 * Optional arguments: appends (default 2,000,000), listeners (default 100).
 */
import { Effect } from "effect"
import * as Memory from "../../src/transports/Memory.ts"
import type { Publication } from "../../src/transports/Transport.ts"

const appends = Number(process.argv[2] ?? 2_000_000)
const listenerCount = Number(process.argv[3] ?? 100)
const publication: Publication = { event: "tick", data: '{"n":1}', version: 1, time: 0 }

const rate = (count: number, ms: number) => `${Math.round((count / ms) * 1000).toLocaleString("en-US")}/s`

const appendLoop = (transport: Memory.MemoryTransport, channel: string, count: number) =>
  Effect.gen(function* () {
    for (let i = 0; i < count; i++) yield* transport.append(channel, publication)
  })

const program = Effect.gen(function* () {
  const transport = yield* Memory.make()

  // Warm up so the JIT has compiled the path being measured.
  yield* appendLoop(transport, "warmup", 200_000)

  for (let round = 1; round <= 3; round++) {
    const start = performance.now()
    yield* appendLoop(transport, `appends-${round}`, appends)
    const ms = performance.now() - start
    console.log(`round ${round}: ${appends.toLocaleString("en-US")} appends, no listeners: ${rate(appends, ms)}`)
  }

  let delivered = 0
  const channel = "fan-out"
  const fanOutAppends = Math.max(1, Math.floor(appends / 10))
  yield* Effect.scoped(
    Effect.gen(function* () {
      for (let i = 0; i < listenerCount; i++) {
        yield* transport.listen(channel, () => {
          delivered++
        })
      }
      for (let round = 1; round <= 3; round++) {
        delivered = 0
        const start = performance.now()
        yield* appendLoop(transport, channel, fanOutAppends)
        const ms = performance.now() - start
        console.log(
          `round ${round}: ${fanOutAppends.toLocaleString("en-US")} appends x ${listenerCount} listeners: ` +
            `${rate(fanOutAppends, ms)} appends, ${rate(delivered, ms)} listener deliveries`
        )
      }
    })
  )
})

Effect.runSync(program)
