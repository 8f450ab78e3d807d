/**
 * Resume over the broker transports, through the whole server: a client resumes 3,000 missed events — three
 * replay pages, each next page read while the one before is sent — while 500 more are published, and must end
 * with every event exactly once and in order. A second client resuming the same range at the same time shares the
 * replay and must get the same. Private redis-server / nats-server on free ports; skipped visibly without them
 * (CI refuses the skip).
 */
import { randomUUID } from "node:crypto"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { TidingsServer } from "../../src/server/Server.ts"
import * as Nats from "../../src/transports/Nats.ts"
import * as Redis from "../../src/transports/Redis.ts"
import type { Transport } from "../../src/transports/Transport.ts"
import { startNatsServer } from "../support/natsServer.ts"
import { redisServerScoped } from "../support/redisServer.ts"
import { requireBinary } from "../support/requireBinary.ts"
import { connect, next, unique } from "./support/session.ts"
import { testServerLayer } from "./support/testServer.ts"

const run = randomUUID().replaceAll("-", "").slice(0, 10)

const transports: ReadonlyArray<{
  readonly kind: "redis" | "nats"
  readonly layer: (binary: string) => Layer.Layer<Transport>
}> = [
  {
    kind: "redis",
    layer: (binary) =>
      Layer.unwrap(
        Effect.map(redisServerScoped(binary), (server) => Redis.layer({ url: server.url, keyPrefix: `resume-${run}:` }))
      ).pipe(Layer.orDie)
  },
  {
    kind: "nats",
    layer: (binary) =>
      Layer.unwrap(
        Effect.map(
          Effect.acquireRelease(
            Effect.promise(() => startNatsServer({ binary })),
            (server) => Effect.promise(() => server.close())
          ),
          (server) => Nats.layer({ url: server.url, stream: `RESUME_${run}`, subjectPrefix: `resume.${run}` })
        )
      ).pipe(Layer.orDie)
  }
]

for (const { kind, layer: transportLayer } of transports) {
  const binary = requireBinary(`${kind}-server`, `server resume over ${kind}`)
  if (binary === undefined) {
    describe.skip(`server resume over ${kind} (${kind}-server not installed)`, () => {
      it("skipped", () => {})
    })
    continue
  }
  layer(testServerLayer({ transportLayer: transportLayer(binary) }), { excludeTestServices: true, timeout: 60_000 })(
    `server resume over ${kind}`,
    (it) => {
      it.effect(
        "two clients resume 3,000 missed events over several pages while 500 more are published: each gets all, once, in order",
        () =>
          Effect.gen(function* () {
            const server = yield* TidingsServer
            const channel = unique("room")
            let top = { epoch: "", offset: 0 }
            for (let n = 1; n <= 3000; n++) top = yield* server.publishUnknown(channel, "tick", { n })
            const a = yield* connect(server.url)
            const b = yield* connect(server.url)
            const since = { epoch: top.epoch, offset: 0 }
            a.send({ type: "subscribe", channel, since })
            b.send({ type: "subscribe", channel, since })
            for (let n = 3001; n <= 3500; n++) yield* server.publishUnknown(channel, "tick", { n })
            for (const client of [a, b]) {
              yield* next(client, (f) => f.type === "event" && f.channel === channel && f.offset === 3500, 20_000)
              const events = client.events(channel)
              expect(events.map((e) => e.offset as number)).toEqual(Array.from({ length: 3500 }, (_, i) => i + 1))
              expect(events.map((e) => (e.data as { n: number }).n)).toEqual(events.map((e) => e.offset as number))
              client.close()
            }
          }),
        60_000
      )
    }
  )
}
