/**
 * The Effect API against the fake server: events as Streams (with resets in band), commands as Effects with
 * typed errors, state as a Stream, and a terminal error failing the streams.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Stream } from "effect"
import * as Client from "../../src/client/node.ts"
import { eventually, type FakeServer, type FakeServerOptions, start } from "./support/fakeServer.ts"
import { demo, step } from "./support/testProtocol.ts"

const fakeServer = (options: Partial<FakeServerOptions> = {}) =>
  Effect.acquireRelease(
    Effect.promise(() => start({ protocol: "demo", versions: [1, 2], ...options })),
    (server) => Effect.promise(() => server.close())
  )

const subscribed = (server: FakeServer, channel: string) =>
  Effect.promise(() => eventually(() => expect(server.latest()?.subscriptions.has(channel)).toBe(true)))

describe("ClientEffect", () => {
  it.live("streams a channel's events and resets in order", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer()
      const client = yield* Client.makeEffect(demo, { url: server.url, version: 2 })
      const fiber = yield* client.events("run:1").pipe(Stream.take(4), Stream.runCollect, Effect.forkChild)
      yield* subscribed(server, "run:1")
      server.publish("run:1", "step_update", step(1))
      server.publish("run:1", "notice", { text: "hi" })
      server.newEpoch("run:1")
      server.publish("run:1", "step_update", step(1, "done"))
      const items = yield* Fiber.join(fiber)
      expect(items.map((i) => (i._tag === "Event" ? `${i.event}:${i.meta.offset}` : `reset:${i.reason}`))).toEqual([
        "step_update:1",
        "notice:2",
        "reset:epoch_changed",
        "step_update:1"
      ])
      const first = items[0]!
      if (first._tag === "Event" && first.event === "step_update") expect(first.data.at).toBeInstanceOf(Date)
    })
  )

  it.live("holds delivery, and acks, while a slow consumer's buffer is full", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer()
      const client = yield* Client.makeEffect(demo, { url: server.url, version: 2, ack: { maxEvents: 1 } })
      const gate = yield* Deferred.make<void>()
      const fiber = yield* client.events("run:1", { bufferSize: 1 }).pipe(
        Stream.mapEffect((item) => Effect.as(Deferred.await(gate), item)),
        Stream.take(5),
        Stream.runCollect,
        Effect.forkChild
      )
      yield* subscribed(server, "run:1")
      for (let i = 1; i <= 5; i++) server.publish("run:1", "step_update", step(i))
      yield* Effect.sleep("150 millis")
      const acked = () =>
        server
          .latest()!
          .sent("ack")
          .map((f) => f.offset as number)
      expect(Math.max(0, ...acked())).toBeLessThanOrEqual(3)
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(fiber)).toHaveLength(5)
      yield* Effect.promise(() => eventually(() => expect(acked().at(-1)).toBe(5)))
    })
  )

  it.live("streams one event type with typed data", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer()
      const client = yield* Client.makeEffect(demo, { url: server.url, version: 2 })
      const fiber = yield* client.on("notice").pipe(Stream.take(2), Stream.runCollect, Effect.forkChild)
      client.client.subscribe("run:1")
      yield* subscribed(server, "run:1")
      server.publish("run:1", "notice", { text: "a" })
      server.publish("run:1", "step_update", step(2))
      server.publish("run:1", "notice", { text: "b" })
      const items = yield* Fiber.join(fiber)
      expect(items.map((i) => `${i.data.text}@${i.meta.offset}`)).toEqual(["a@1", "b@3"])
    })
  )

  it.live("runs commands as Effects with typed success and typed failure", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer({
        onCommand: (_, payload) =>
          (payload as { query: string }).query === "ok"
            ? { ok: true, result: { runId: "r1", at: "2026-01-01T00:00:00.000Z" } }
            : { ok: false, error: { reason: "busy", retryAfterMs: 100 } }
      })
      const client = yield* Client.makeEffect(demo, { url: server.url, version: 2 })
      const result = yield* client.command("start", { query: "ok" })
      expect(result).toEqual({ runId: "r1", at: new Date("2026-01-01T00:00:00.000Z") })

      const failure = yield* Effect.flip(client.command("start", { query: "no" }))
      expect(failure).toBeInstanceOf(Client.CommandFailed)
      if (failure._tag === "CommandFailed") expect(failure.error).toEqual({ reason: "busy", retryAfterMs: 100 })

      const handled = yield* client
        .command("start", { query: "no" })
        .pipe(Effect.catchTag("CommandFailed", (e) => Effect.succeed(`retry in ${e.error.retryAfterMs} ms`)))
      expect(handled).toBe("retry in 100 ms")
    })
  )

  it.live("emits states and ends the stream when the scope closes the client", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer()
      const states = yield* Effect.scoped(
        Effect.gen(function* () {
          const client = yield* Client.makeEffect(demo, { url: server.url, version: 2 })
          const fiber = yield* client.states.pipe(Stream.runCollect, Effect.forkChild)
          yield* client.ready
          yield* client.close
          return yield* Fiber.join(fiber)
        })
      )
      expect(states).toEqual(["connecting", "open", "closed"])
    })
  )

  it.live("fails streams and ready with the terminal error", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer({ versions: [2] })
      const client = yield* Client.makeEffect(demo, { url: server.url, version: 1 })
      const error = yield* Effect.flip(Stream.runCollect(client.events("run:1")))
      expect(error).toBeInstanceOf(Client.ProtocolMismatch)
      const ready = yield* Effect.flip(client.ready)
      expect(ready._tag).toBe("ProtocolMismatch")
      expect(yield* client.state).toBe("closed")
    })
  )
})
