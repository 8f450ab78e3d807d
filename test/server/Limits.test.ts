/**
 * Named limits and their refusals: frame size, command rate (and the close for sustained abuse), subscriptions
 * per connection, connections per user, connection attempts per IP (HTTP 429 before the upgrade).
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { CloseCodes } from "../../src/protocol/CloseCodes.ts"
import { TidingsServer } from "../../src/server/Server.ts"
import { connectRaw } from "./support/rawClient.ts"
import { connect, next, subscribe } from "./support/session.ts"
import { testServerLayer } from "./support/testServer.ts"

const limits = {
  maxFrameBytes: 1024,
  maxPayloadBytes: 64 * 1024,
  commandsPerSecond: 5,
  commandBurst: 5,
  maxRateLimitRefusals: 20,
  maxSubscriptions: 3,
  maxConnectionsPerUser: 2,
  connectionAttemptsPerSecondPerIp: 1000
}

layer(testServerLayer({ limits }), { excludeTestServices: true })("limits", (it) => {
  it.effect(
    "a frame over maxFrameBytes gets frame_too_large and the connection stays up; far over, ws closes 1009",
    () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const client = yield* connect(server.url, { sub: "f1" })
        client.send({
          type: "command",
          id: "big",
          name: "send",
          payload: { channel: "x", body: "a".repeat(2000), loud: false }
        })
        expect(yield* next(client, (f) => f.type === "error")).toMatchObject({ code: "frame_too_large" })
        client.send({ type: "ping" })
        yield* next(client, (f) => f.type === "pong")
        client.send("x".repeat(100 * 1024))
        expect((yield* Effect.promise(() => client.closed)).code).toBe(1009)
      })
  )

  it.effect("over the command rate: rate_limited with retryAfterMs; sustained flooding closes 4003", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const client = yield* connect(server.url, { sub: "r1" })
      for (let i = 0; i < 8; i++) client.send({ type: "command", id: `c${i}`, name: "fail", payload: {} })
      const limited = yield* next(client, (f) => f.type === "error" && f.code === "rate_limited")
      expect(limited.retryAfterMs).toBeGreaterThan(0)
      expect(client.frames.filter((f) => f.type === "reply").length + 1).toBeGreaterThanOrEqual(5)
      for (let i = 0; i < 40; i++) client.send({ type: "command", id: `f${i}`, name: "fail", payload: {} })
      expect((yield* Effect.promise(() => client.closed)).code).toBe(CloseCodes.rateLimited)
    })
  )

  it.effect("more than maxSubscriptions gets too_many_subscriptions", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const client = yield* connect(server.url, { sub: "s1", channels: ["room:*"] })
      for (const c of ["room:1", "room:2", "room:3"]) yield* subscribe(client, c)
      client.send({ type: "subscribe", channel: "room:4" })
      expect(yield* next(client, (f) => f.type === "error")).toMatchObject({ code: "too_many_subscriptions" })
      client.close()
    })
  )

  it.effect("more than maxConnectionsPerUser closes the extra connection with 4004", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const a = yield* connect(server.url, { sub: "busy" })
      const b = yield* connect(server.url, { sub: "busy" })
      const c = yield* Effect.promise(() => connectRaw(server.url))
      const { sign } = yield* Effect.promise(() => import("./support/testServer.ts"))
      c.send({ type: "authenticate", token: yield* Effect.promise(() => sign({ sub: "busy" })) })
      expect((yield* Effect.promise(() => c.closed)).code).toBe(CloseCodes.tooManyConnections)
      yield* Effect.sleep("20 millis")
      a.close()
      yield* Effect.promise(() => a.closed)
      yield* Effect.sleep("20 millis")
      // the refused connection was never counted: b and d fill the limit again, e is refused
      const d = yield* connect(server.url, { sub: "busy" })
      const e = yield* Effect.promise(() => connectRaw(server.url))
      e.send({ type: "authenticate", token: yield* Effect.promise(() => sign({ sub: "busy" })) })
      expect((yield* Effect.promise(() => e.closed)).code).toBe(CloseCodes.tooManyConnections)
      d.close()
      b.close()
    })
  )
})

layer(testServerLayer({ limits: { connectionAttemptsPerSecondPerIp: 3 } }), { excludeTestServices: true })(
  "upgrade rate",
  (it) => {
    it.effect("too many connection attempts per second from one IP get HTTP 429 before the upgrade", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const results = yield* Effect.promise(() =>
          Promise.all(
            Array.from({ length: 6 }, () =>
              connectRaw(server.url).then(
                (c) => {
                  c.close()
                  return 101
                },
                (e: { status: number }) => e.status
              )
            )
          )
        )
        expect(results.filter((s) => s === 429).length).toBeGreaterThanOrEqual(2)
        expect(results.filter((s) => s === 101).length).toBeGreaterThanOrEqual(1)
      })
    )
  }
)

layer(testServerLayer({ limits: { maxConnections: 2 } }), { excludeTestServices: true })("server capacity", (it) => {
  it.effect("past maxConnections an upgrade gets HTTP 503 server_full", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const a = yield* Effect.promise(() => connectRaw(server.url))
      const b = yield* Effect.promise(() => connectRaw(server.url))
      const refused = yield* Effect.promise(() =>
        connectRaw(server.url).then(
          () => undefined,
          (e: { status: number; body: string }) => e
        )
      )
      expect(refused?.status).toBe(503)
      expect(JSON.parse(refused!.body)).toMatchObject({ error: "server_full" })
      a.close()
      b.close()
    })
  )
})
