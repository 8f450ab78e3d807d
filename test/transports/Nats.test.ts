/**
 * The NATS JetStream transport against the shared conformance suite, on a private `nats-server -js` started for
 * this file (free port, temporary store) with a stream name and subject prefix unique to the run. Losing a
 * channel's log is simulated by purging its subject. NATS-only behaviour (several nodes, stream recreation,
 * server outages) is in NatsSpecific.test.ts.
 */
import { randomUUID } from "node:crypto"
import { describe, it } from "@effect/vitest"
import { jetstreamManager } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import { Context, Effect, Layer } from "effect"
import * as Nats from "../../src/transports/Nats.ts"
import { Transport } from "../../src/transports/Transport.ts"
import { startNatsServer } from "../support/natsServer.ts"
import { requireBinary } from "../support/requireBinary.ts"
import { suite } from "./TransportSuite.ts"

const binary = requireBinary("nats-server", "NATS transport conformance")

/** Test-only access to the server behind the transport. */
class NatsAdmin extends Context.Service<
  NatsAdmin,
  { readonly purgeChannel: (channel: string) => Effect.Effect<void, unknown> }
>()("test/NatsAdmin") {}

const makeLayer = (options: Parameters<typeof Nats.make>[0]) =>
  Layer.effectContext(
    Effect.gen(function* () {
      const server = yield* Effect.acquireRelease(
        Effect.promise(() => startNatsServer({ binary: binary! })),
        (s) => Effect.promise(() => s.close())
      )
      const run = randomUUID().replaceAll("-", "").slice(0, 10)
      const stream = `TIDINGS_TEST_${run}`
      const subjectPrefix = `tidings-test.${run}`
      const transport = yield* Nats.make({ ...options, url: server.url, stream, subjectPrefix })
      const admin = yield* Effect.acquireRelease(
        Effect.promise(() => connect({ servers: server.url })),
        (nc) => Effect.promise(() => nc.close())
      )
      const jsm = yield* Effect.promise(() => jetstreamManager(admin))
      const purgeChannel = (channel: string) =>
        Effect.tryPromise(() => jsm.streams.purge(stream, { filter: Nats.channelSubject(subjectPrefix, channel) }))
      return Context.make(Transport, transport).pipe(Context.add(NatsAdmin, { purgeChannel }))
    })
  )

if (binary !== undefined) {
  suite("nats", makeLayer, {
    resetChannel: (channel) => NatsAdmin.use((admin) => admin.purgeChannel(channel))
  })
} else {
  describe.skip("Transport conformance: nats (nats-server not installed)", () => {
    it("skipped", () => {})
  })
}
