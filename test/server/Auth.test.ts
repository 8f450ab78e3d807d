/**
 * Authentication and channel authorization: refusals before the upgrade (HTTP 401) and in band, and that not
 * one event reaches a socket that may not read its channel.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SignJWT } from "jose"
import { TidingsServer } from "../../src/server/Server.ts"
import { connectRaw } from "./support/rawClient.ts"
import { connect, next, subscribe, unique } from "./support/session.ts"
import { SECRET, sign, testServerLayer } from "./support/testServer.ts"

const upgradeStatus = (url: string, headers: Record<string, string>) =>
  Effect.promise(() =>
    connectRaw(url, { headers }).then(
      (c) => {
        c.close()
        return { status: 101, body: "" }
      },
      (e: { status: number; body: string }) => e
    )
  )

layer(testServerLayer({ timing: { authTimeoutMs: 300 } }), { excludeTestServices: true })("auth", (it) => {
  it.effect("refuses a bad signature and an expired token before the upgrade with HTTP 401 and a reason", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const forged = yield* Effect.promise(() => sign({ sub: "mallory" }, { secret: "not-the-server-secret-at-all!!" }))
      const bad = yield* upgradeStatus(server.url, { authorization: `Bearer ${forged}` })
      expect(bad.status).toBe(401)
      expect(JSON.parse(bad.body)).toMatchObject({ error: "invalid_token" })
      const stale = yield* Effect.promise(() => sign({ sub: "alice" }, { expiresInSeconds: -10 }))
      const expired = yield* upgradeStatus(`${server.url}?token=${stale}`, {})
      expect(expired.status).toBe(401)
      expect(JSON.parse(expired.body)).toMatchObject({ error: "expired_token" })
      const good = yield* Effect.promise(() => sign({ sub: "alice" }))
      expect((yield* upgradeStatus(server.url, { authorization: `Bearer ${good}` })).status).toBe(101)
    })
  )

  it.effect("refuses a signature with a non-ASCII character (401) and keeps serving", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const good = yield* Effect.promise(() => sign({ sub: "alice" }))
      const mangled = `${good.slice(0, -1)}é`
      const refused = yield* upgradeStatus(`${server.url}?token=${encodeURIComponent(mangled)}`, {})
      expect(refused.status).toBe(401)
      expect(JSON.parse(refused.body)).toMatchObject({ error: "invalid_token" })
      expect((yield* upgradeStatus(server.url, { authorization: `Bearer ${good}` })).status).toBe(101)
    })
  )

  it.effect("a shared secret verifies HS256 only: the same secret under HS512 is refused", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const hs512 = yield* Effect.promise(() =>
        new SignJWT({ sub: "alice" }).setProtectedHeader({ alg: "HS512" }).sign(new TextEncoder().encode(SECRET))
      )
      const refused = yield* upgradeStatus(server.url, { authorization: `Bearer ${hs512}` })
      expect(refused.status).toBe(401)
      expect(JSON.parse(refused.body)).toMatchObject({ error: "invalid_token" })
      expect(JSON.parse(refused.body).message).toMatch(/alg/)
    })
  )

  it.effect(
    "with no token and no anonymous access: an empty authenticate is refused (4401); silence times out (4408)",
    () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const empty = yield* Effect.promise(() => connectRaw(server.url))
        empty.send({ type: "authenticate" })
        const error = yield* next(empty, (f) => f.type === "error")
        expect(error).toMatchObject({ code: "auth_failed" })
        expect((yield* Effect.promise(() => empty.closed)).code).toBe(4401)
        const silent = yield* Effect.promise(() => connectRaw(server.url))
        expect((yield* Effect.promise(() => silent.closed)).code).toBe(4408)
      })
  )

  it.effect("an expired token in the authenticate frame closes 4403 (refreshable), not 4401", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const client = yield* Effect.promise(() => connectRaw(server.url))
      client.send({
        type: "authenticate",
        token: yield* Effect.promise(() => sign({ sub: "x" }, { expiresInSeconds: -5 }))
      })
      expect((yield* Effect.promise(() => client.closed)).code).toBe(4403)
    })
  )

  it.effect("frames before authentication are refused with not_authenticated", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const client = yield* Effect.promise(() => connectRaw(server.url))
      client.send({ type: "subscribe", channel: "room:1" })
      expect(yield* next(client, (f) => f.type === "error")).toMatchObject({ code: "not_authenticated" })
      client.close()
    })
  )

  it.effect("a channel outside the token's patterns is refused, and none of its events reach that socket", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const secret = unique("secret")
      const reader = yield* connect(server.url, { sub: "bob", channels: ["secret:*"] })
      const intruder = yield* connect(server.url, { sub: "eve", channels: ["room:*"] })
      yield* subscribe(reader, secret)
      intruder.send({ type: "subscribe", channel: secret })
      expect(yield* next(intruder, (f) => f.type === "error")).toMatchObject({ code: "forbidden", channel: secret })
      intruder.send({ type: "subscribe", channel: secret, since: { epoch: "x", offset: 0 } })
      intruder.send({ type: "command", id: "w", name: "send", payload: { channel: secret, body: "x", loud: false } })
      expect(yield* next(intruder, (f) => f.type === "reply" && f.id === "w")).toMatchObject({
        ok: false,
        error: { _tag: "NotAllowed" }
      })
      for (let n = 1; n <= 50; n++) yield* server.publishUnknown(secret, "tick", { n })
      yield* next(reader, (f) => f.type === "event" && f.offset === 50)
      yield* Effect.sleep("50 millis")
      expect(intruder.frames.filter((f) => f.type === "event")).toEqual([])
      expect(
        intruder.frames.some((f) => f.type !== "error" && f.type !== "reply" && JSON.stringify(f).includes(secret))
      ).toBe(false)
      reader.close()
      intruder.close()
    })
  )

  it.effect("every user reads its personal channel, which reaches all of that user's connections", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const a = yield* connect(server.url, { sub: "carol" })
      const b = yield* connect(server.url, { sub: "carol" })
      yield* subscribe(a, "user:carol")
      yield* subscribe(b, "user:carol")
      a.send({ type: "subscribe", channel: "user:dave" })
      expect(yield* next(a, (f) => f.type === "error")).toMatchObject({ code: "forbidden" })
      yield* server.publishUnknown("user:carol", "tick", { n: 1 })
      yield* next(a, (f) => f.type === "event" && f.channel === "user:carol")
      yield* next(b, (f) => f.type === "event" && f.channel === "user:carol")
      a.close()
      b.close()
    })
  )
})

layer(testServerLayer({ anonymous: true }), { excludeTestServices: true })("anonymous access", (it) => {
  it.effect("when configured, an anonymous connection reads only its allowed patterns", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const client = yield* Effect.promise(() => connectRaw(server.url))
      client.send({ type: "authenticate" })
      expect(yield* next(client, (f) => f.type === "welcome")).toMatchObject({ user: null })
      yield* subscribe(client, "public:news")
      client.send({ type: "subscribe", channel: "room:1" })
      expect(yield* next(client, (f) => f.type === "error")).toMatchObject({ code: "forbidden" })
      client.close()
    })
  )
})
