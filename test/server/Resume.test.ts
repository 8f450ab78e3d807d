/**
 * Resume: a client whose socket dies while events are published reconnects and gets exactly what it missed, in
 * order, with no duplicate; past retention it is told with `reset`; positions it was never given are refused —
 * once per wire codec.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import type { Codec } from "../../src/protocol/Negotiation.ts"
import { TidingsServer } from "../../src/server/Server.ts"
import { connect as connectWith, next, subscribe, unique } from "./support/session.ts"
import { testServerLayer } from "./support/testServer.ts"

const codecs: ReadonlyArray<Codec> = ["json", "msgpack"]

const retention = (channel: string) =>
  channel.startsWith("short:") ? { maxEntries: 100, maxAgeMs: 60_000 } : { maxEntries: 10_000, maxAgeMs: 60_000 }

for (const codec of codecs) {
  const connect = (url: string, claims?: Record<string, unknown>, version = 2, extra: { session?: string } = {}) =>
    connectWith(url, claims, version, { ...extra, codec })

  layer(testServerLayer({ transport: { retention } }), { excludeTestServices: true })(`resume (${codec})`, (it) => {
    it.effect("replays exactly the 1,000 events missed while the socket was destroyed, then goes live", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const channel = unique("room")
        const first = yield* connect(server.url)
        yield* subscribe(first, channel)
        for (let n = 1; n <= 10; n++) yield* server.publishUnknown(channel, "tick", { n })
        const seen = yield* next(first, (f) => f.type === "event" && f.offset === 10)
        first.ws.terminate() // no close handshake: like a dropped network
        for (let n = 11; n <= 1010; n++) yield* server.publishUnknown(channel, "tick", { n })

        const second = yield* connect(server.url)
        const subscribed = yield* subscribe(second, channel, { epoch: seen.epoch, offset: 10 })
        expect(subscribed).toMatchObject({ recovered: true, replayed: 1000, position: { offset: 1010 } })
        yield* server.publishUnknown(channel, "tick", { n: 1011 })
        yield* next(second, (f) => f.type === "event" && f.offset === 1011)
        const offsets = second.events(channel).map((e) => e.offset as number)
        expect(offsets).toEqual(Array.from({ length: 1001 }, (_, i) => i + 11))
        expect(second.events(channel).map((e) => (e.data as { n: number }).n)).toEqual(offsets)
        second.close()
      })
    )

    it.effect("merges live events published during the replay without gap or duplicate", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const channel = unique("room")
        for (let n = 1; n <= 3000; n++) yield* server.publishUnknown(channel, "tick", { n })
        const client = yield* connect(server.url)
        const epoch = (yield* subscribe(client, unique("room"))).position as { epoch: string }
        void epoch
        const top = yield* Effect.promise(() => server.publishPromise(channel, "tick", { n: 3001 }).then((p) => p))
        client.send({ type: "subscribe", channel, since: { epoch: top.epoch, offset: 0 } })
        // publish concurrently with the replay
        for (let n = 3002; n <= 3500; n++) yield* server.publishUnknown(channel, "tick", { n })
        yield* next(client, (f) => f.type === "event" && f.channel === channel && f.offset === 3500, 10_000)
        const offsets = client.events(channel).map((e) => e.offset as number)
        expect(offsets).toEqual(Array.from({ length: 3500 }, (_, i) => i + 1))
        client.close()
      })
    )

    it.effect("past retention, a resume gets reset {reason: trimmed} and continues live from the top", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const channel = unique("short")
        const client = yield* connect(server.url, { sub: "alice", channels: ["short:*"] })
        const subscribed = yield* subscribe(client, channel)
        const epoch = (subscribed.position as { epoch: string }).epoch
        client.ws.terminate()
        for (let n = 1; n <= 250; n++) yield* server.publishUnknown(channel, "tick", { n })
        const again = yield* connect(server.url, { sub: "alice", channels: ["short:*"] })
        const resubscribed = yield* subscribe(again, channel, { epoch, offset: 0 })
        const reset = again.frames.find((f) => f.type === "reset")
        expect(reset).toMatchObject({ channel, reason: "trimmed", position: { epoch, offset: 250 } })
        expect(resubscribed).toMatchObject({ recovered: false, position: { offset: 250 } })
        yield* server.publishUnknown(channel, "tick", { n: 251 })
        const live = yield* next(again, (f) => f.type === "event" && f.channel === channel)
        expect(live.offset).toBe(251)
        again.close()
      })
    )

    it.effect(
      "a position from another epoch gets reset {reason: epoch_changed}; one ahead of the log, unknown_position",
      () =>
        Effect.gen(function* () {
          const server = yield* TidingsServer
          const channel = unique("room")
          yield* server.publishUnknown(channel, "tick", { n: 1 })
          const client = yield* connect(server.url)
          yield* subscribe(client, channel, { epoch: "some-other-epoch", offset: 1 })
          expect(client.frames.find((f) => f.type === "reset")).toMatchObject({ reason: "epoch_changed" })
          const other = unique("room")
          const top = yield* server.publishUnknown(other, "tick", { n: 1 })
          yield* subscribe(client, other, { epoch: top.epoch, offset: 99 })
          expect(client.frames.find((f) => f.type === "reset" && f.channel === other)).toMatchObject({
            reason: "unknown_position",
            position: { offset: 1 }
          })
          client.close()
        })
    )

    it.effect("a session resumes from the server's memory of its acks when the client sends no position", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const channel = unique("room")
        const first = yield* connect(server.url)
        const welcome = first.frames.find((f) => f.type === "welcome")!
        yield* subscribe(first, channel)
        for (let n = 1; n <= 5; n++) yield* server.publishUnknown(channel, "tick", { n })
        const fifth = yield* next(first, (f) => f.type === "event" && f.offset === 5)
        first.send({ type: "ack", channel, epoch: fifth.epoch, offset: 5 })
        yield* Effect.sleep("1200 millis") // cursors are flushed once a second
        first.ws.terminate()
        for (let n = 6; n <= 8; n++) yield* server.publishUnknown(channel, "tick", { n })
        const second = yield* connect(server.url, undefined, 2, { session: welcome.session as string })
        yield* Effect.sleep("50 millis")
        const subscribed = yield* subscribe(second, channel)
        expect(subscribed).toMatchObject({ recovered: true, replayed: 3 })
        expect(second.events(channel).map((e) => e.offset)).toEqual([6, 7, 8])
        second.close()
      })
    )
  })
}
