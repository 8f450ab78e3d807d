/**
 * Shared history reads: subscriptions resuming from the same position at once share one transport read, and a
 * subscription that joined while the shared read was already in flight still gets the entries appended in
 * between — from history, with no reset.
 */
import { expect, layer } from "@effect/vitest"
import { Deferred, Effect, Layer } from "effect"
import { TidingsServer } from "../../src/server/Server.ts"
import * as Memory from "../../src/transports/Memory.ts"
import { Transport } from "../../src/transports/Transport.ts"
import type { RawClient } from "./support/rawClient.ts"
import { connect, next, unique } from "./support/session.ts"
import { testServerLayer } from "./support/testServer.ts"

/** Reads run at once (their result is fixed then) but are handed back only when the test opens the gate. */
const gate = {
  closed: false,
  /** The position of every read that reached the transport. */
  reads: [] as Array<number | undefined>,
  started: Deferred.makeUnsafe<void>(),
  open: Deferred.makeUnsafe<void>()
}

const gatedMemory = Layer.effect(
  Transport,
  Effect.map(Memory.make(), (memory) => ({
    ...memory,
    read: (...args: Parameters<typeof memory.read>) =>
      memory.read(...args).pipe(
        Effect.tap(() =>
          Effect.suspend(() => {
            gate.reads.push(args[1]?.offset)
            if (!gate.closed) return Effect.void
            Deferred.doneUnsafe(gate.started, Effect.void)
            return Deferred.await(gate.open)
          })
        )
      )
  }))
)

const subscribeFrom = (client: RawClient, channel: string, epoch: string, offset: number) =>
  client.send({ type: "subscribe", channel, since: { epoch, offset } })

layer(testServerLayer({ transportLayer: gatedMemory }), { excludeTestServices: true })("shared reads", (it) => {
  it.effect("a subscription that joins during a shared read gets what was appended meanwhile, without a reset", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const channel = unique("room")
      let epoch = ""
      for (let n = 1; n <= 10; n++) epoch = (yield* server.publishUnknown(channel, "tick", { n })).epoch
      const a = yield* connect(server.url)
      const b = yield* connect(server.url)

      gate.closed = true
      subscribeFrom(a, channel, epoch, 5)
      yield* Deferred.await(gate.started) // a's read has its result (top 10) and is held
      for (let n = 11; n <= 15; n++) yield* server.publishUnknown(channel, "tick", { n })
      subscribeFrom(b, channel, epoch, 5) // same page: b waits for a's read, whose top is 10
      yield* Effect.sleep("200 millis")
      for (let n = 16; n <= 17; n++) yield* server.publishUnknown(channel, "tick", { n })
      gate.closed = false
      Deferred.doneUnsafe(gate.open, Effect.void)

      for (const client of [a, b]) {
        yield* next(client, (f) => f.type === "subscribed" && f.channel === channel)
        yield* next(client, (f) => f.type === "event" && f.offset === 17)
        expect(client.events(channel).map((e) => e.offset)).toEqual(Array.from({ length: 12 }, (_, i) => i + 6))
        expect(client.frames.filter((f) => f.type === "reset")).toEqual([])
      }
      // b shared a's read of the page after 5 (one transport read for both), then read the gap after 10 itself
      expect(gate.reads).toEqual([5, 10])
      a.close()
      b.close()
    })
  )
})
