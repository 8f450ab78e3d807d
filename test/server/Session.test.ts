/**
 * Session lifetime: token expiry warning, in-band refresh, close on expiry; heartbeat drops a silent peer
 * within two intervals and keeps one that answers.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { CloseCodes } from "../../src/protocol/CloseCodes.ts"
import { TidingsServer } from "../../src/server/Server.ts"
import { connectRaw } from "./support/rawClient.ts"
import { next } from "./support/session.ts"
import { sign, testServerLayer } from "./support/testServer.ts"

const login = (url: string, expiresInSeconds: number, sub = "tina") =>
  Effect.promise(async () => {
    const client = await connectRaw(url)
    client.send({ type: "authenticate", token: await sign({ sub }, { expiresInSeconds }) })
    await client.next((f) => f.type === "welcome")
    return client
  })

layer(testServerLayer({ timing: { tokenExpiryWarningMs: 1500, heartbeatMs: 400 } }), { excludeTestServices: true })(
  "session",
  (it) => {
    it.effect("warns before the token expires, accepts a fresh token in band, and stays open past the old expiry", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const client = yield* login(server.url, 3)
        client.ws.on("message", () => undefined)
        // answer pings so the heartbeat keeps us
        client.ws.on("message", (d) => d.toString().includes('"ping"') && client.send({ type: "pong" }))
        const warning = yield* next(client, (f) => f.type === "session_update" && f.status === "expiring_soon", 4000)
        expect(warning.expiresInMs).toBeLessThanOrEqual(1600)
        expect(warning.expiresInMs).toBeGreaterThan(1000)
        // the expiry check runs every 250 ms: the warning must not repeat while the token is still the old one
        yield* Effect.sleep("600 millis")
        client.send({
          type: "authenticate",
          token: yield* Effect.promise(() => sign({ sub: "tina" }, { expiresInSeconds: 60 }))
        })
        yield* next(client, (f) => f.type === "session_update" && f.status === "refreshed")
        yield* Effect.sleep("3 seconds")
        expect(client.ws.readyState).toBe(1)
        // warned once for the old token, not at every check
        expect(client.frames.filter((f) => f.type === "session_update" && f.status === "expiring_soon")).toHaveLength(1)
        // a refresh for another subject is refused and changes nothing
        client.send({ type: "authenticate", token: yield* Effect.promise(() => sign({ sub: "mallory" })) })
        expect(yield* next(client, (f) => f.type === "error" && f.code === "forbidden")).toBeDefined()
        client.close()
      })
    )

    it.effect("a refreshed token with narrower rights ends the subscriptions it no longer allows", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const client = yield* Effect.promise(async () => {
          const c = await connectRaw(server.url)
          c.send({ type: "authenticate", token: await sign({ sub: "nina", channels: ["room:*", "ops:*"] }) })
          await c.next((f) => f.type === "welcome")
          return c
        })
        client.send({ type: "subscribe", channel: "ops:1" })
        client.send({ type: "subscribe", channel: "room:1" })
        yield* next(client, (f) => f.type === "subscribed" && f.channel === "room:1")
        client.send({
          type: "authenticate",
          token: yield* Effect.promise(() => sign({ sub: "nina", channels: ["room:*"] }))
        })
        expect(yield* next(client, (f) => f.type === "unsubscribed")).toMatchObject({ channel: "ops:1" })
        yield* server.publishUnknown("ops:1", "tick", { n: 1 })
        yield* server.publishUnknown("room:1", "tick", { n: 1 })
        yield* next(client, (f) => f.type === "event" && f.channel === "room:1")
        expect(client.frames.some((f) => f.type === "event" && f.channel === "ops:1")).toBe(false)
        client.close()
      })
    )

    it.effect("without a refresh, the connection is closed 4403 when the token expires", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const client = yield* login(server.url, 2)
        client.ws.on("message", (d) => d.toString().includes('"ping"') && client.send({ type: "pong" }))
        const { code } = yield* Effect.promise(() => client.closed)
        expect(code).toBe(CloseCodes.tokenExpired)
      })
    )

    it.effect("a peer that stops answering pings is dropped (4002) within two intervals; one that answers stays", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const silent = yield* login(server.url, 60, "s1")
        const alive = yield* login(server.url, 60, "s2")
        alive.ws.on("message", (d) => d.toString().includes('"ping"') && alive.send({ type: "pong" }))
        const started = Date.now()
        const { code } = yield* Effect.promise(() => silent.closed)
        expect(code).toBe(CloseCodes.heartbeatTimeout)
        expect(Date.now() - started).toBeLessThan(3 * 400 + 300)
        yield* Effect.sleep("900 millis")
        expect(alive.ws.readyState).toBe(1)
        alive.close()
      })
    )
  }
)
