/**
 * End-to-end over real sockets: handshake, subscribe → publish → receive, commands and their failures — once per
 * wire codec (JSON text frames, MessagePack binary frames).
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as MessagePack from "../../src/protocol/MessagePack.ts"
import type { Codec } from "../../src/protocol/Negotiation.ts"
import { TidingsServer } from "../../src/server/Server.ts"
import { connectRaw, type RawClient } from "./support/rawClient.ts"
import { sign, testServerLayer } from "./support/testServer.ts"

const codecs: ReadonlyArray<Codec> = ["json", "msgpack"]

for (const codec of codecs) {
  const connect = (
    url: string,
    claims: Record<string, unknown> = { sub: "alice", channels: ["room:*"] },
    version = 2
  ) =>
    Effect.promise(async () => {
      const client = await connectRaw(url, { protocols: [`tidings.chat.v${version}.${codec}`] })
      client.send({ type: "authenticate", token: await sign(claims) })
      await client.next((f) => f.type === "welcome")
      return client
    })

  const subscribe = (client: RawClient, channel: string, since?: object) =>
    Effect.promise(async () => {
      client.send({ type: "subscribe", channel, ...(since ? { since } : {}) })
      return client.next((f) => f.type === "subscribed" && f.channel === channel)
    })

  const unique = (prefix: string) => `${prefix}:${Math.random().toString(36).slice(2, 10)}`

  /** A frame as this codec writes it; `"malformed"` is bytes the codec cannot parse. */
  const wire = (frame: object | "malformed"): string | Uint8Array =>
    codec === "json"
      ? frame === "malformed"
        ? "{not json"
        : JSON.stringify(frame)
      : frame === "malformed"
        ? Uint8Array.from([0x92, 0x01]) // an array of two values holding only one: truncated
        : MessagePack.encode(frame)

  layer(testServerLayer(), { excludeTestServices: true })(`server (${codec})`, (it) => {
    it.effect("welcomes with the negotiated version and the limits", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const client = yield* connect(server.url)
        const welcome = client.frames.find((f) => f.type === "welcome")!
        expect(welcome).toMatchObject({ protocol: "chat", version: 2, user: "alice" })
        expect(client.ws.protocol).toBe(`tidings.chat.v2.${codec}`)
        expect(new Set(client.kinds)).toEqual(new Set([codec === "json" ? "text" : "binary"]))
        client.close()
      })
    )

    it.effect("delivers a published event to a subscriber, in order", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const channel = unique("room")
        const client = yield* connect(server.url)
        const subscribed = yield* subscribe(client, channel)
        expect(subscribed).toMatchObject({ recovered: false, replayed: 0, position: { offset: 0 } })
        for (let i = 1; i <= 20; i++) yield* server.publishUnknown(channel, "tick", { n: i })
        yield* Effect.promise(() => client.next((f) => f.type === "event" && f.offset === 20))
        const events = client.events(channel)
        expect(events.map((e) => (e.data as { n: number }).n)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
        expect(events.map((e) => e.offset)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
        client.close()
      })
    )

    it.effect("answers a command with its typed result, and a typed error as an error reply", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const channel = unique("room")
        const client = yield* connect(server.url)
        yield* subscribe(client, channel)
        client.send({ type: "command", id: "c1", name: "send", payload: { channel, body: "hi", loud: false } })
        const reply = yield* Effect.promise(() => client.next((f) => f.type === "reply" && f.id === "c1"))
        expect(reply).toMatchObject({ ok: true, result: { offset: 1 } })
        const event = yield* Effect.promise(() => client.next((f) => f.type === "event" && f.channel === channel))
        expect(event).toMatchObject({ event: "said", data: { from: "alice", body: "hi" }, offset: 1 })
        client.send({ type: "command", id: "c2", name: "fail", payload: {} })
        const failed = yield* Effect.promise(() => client.next((f) => f.type === "reply" && f.id === "c2"))
        expect(failed).toMatchObject({ ok: false, error: { _tag: "NotAllowed", reason: "always fails" } })
        client.close()
      })
    )

    it.effect("a command id is free again once its reply has been sent, also for a handler that finishes at once", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const client = yield* connect(server.url)
        const answers = () => client.frames.filter((f) => f.type === "reply" || f.type === "error")
        for (let round = 1; round <= 3; round++) {
          client.send({ type: "command", id: "same", name: "fail", payload: {} })
          // this round's own answer (`next` would also match an earlier round's frame)
          yield* Effect.promise(() => client.next(() => answers().length >= round))
          expect(answers()[round - 1]).toMatchObject({ type: "reply", id: "same", ok: false })
        }
        client.close()
      })
    )

    it.effect("answers a defect with an internal error and keeps the connection", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const client = yield* connect(server.url)
        client.send({ type: "command", id: "b1", name: "boom", payload: {} })
        const error = yield* Effect.promise(() => client.next((f) => f.type === "error" && f.id === "b1"))
        expect(error).toMatchObject({ code: "internal" })
        client.send({ type: "command", id: "b2", name: "fail", payload: {} })
        yield* Effect.promise(() => client.next((f) => f.type === "reply" && f.id === "b2"))
        expect(client.ws.readyState).toBe(1)
        client.close()
      })
    )

    it.effect("gives a malformed frame a typed error with the path of the bad field, and stays up", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const client = yield* connect(server.url)
        const cases: Array<[object | "malformed", string, Array<string | number> | undefined]> = [
          ["malformed", "bad_json", undefined],
          [{ type: "teleport" }, "unknown_frame", ["type"]],
          [{ type: "subscribe", channel: 42 }, "bad_frame", ["channel"]],
          [{ type: "command", id: "x1", name: "nope", payload: {} }, "unknown_command", ["name"]],
          [
            { type: "command", id: "x2", name: "send", payload: { channel: "a", body: 1, loud: true } },
            "invalid_payload",
            ["payload", "body"]
          ],
          [{ type: "subscribe", channel: "secret:1" }, "forbidden", ["channel"]]
        ]
        for (const [frame, code, path] of cases) {
          const before = client.frames.length
          const raw = JSON.stringify(frame)
          client.send(wire(frame))
          const error = yield* Effect.promise(() =>
            client.next((f) => f.type === "error" && client.frames.indexOf(f) >= before)
          )
          expect(error.code, raw).toBe(code)
          if (path) expect(error.path, raw).toEqual(path)
        }
        client.send({ type: "command", id: "ok", name: "fail", payload: {} })
        yield* Effect.promise(() => client.next((f) => f.type === "reply" && f.id === "ok"))
        client.close()
      })
    )

    it.effect("refuses an upgrade with no common version: HTTP 400 listing the supported subprotocols", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const error = yield* Effect.promise(() =>
          connectRaw(server.url, { protocols: [`tidings.chat.v9.${codec}`] }).then(
            () => undefined,
            (e: { status: number; body: string }) => e
          )
        )
        expect(error?.status).toBe(400)
        expect(JSON.parse(error!.body).supported).toEqual(["tidings.chat.v1.json", "tidings.chat.v2.json"])
      })
    )

    it.effect("picks the highest common version", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const client = yield* Effect.promise(() =>
          connectRaw(server.url, {
            protocols: [`tidings.chat.v1.${codec}`, `tidings.chat.v2.${codec}`, `tidings.chat.v7.${codec}`]
          })
        )
        expect(client.ws.protocol).toBe(`tidings.chat.v2.${codec}`)
        client.close()
      })
    )

    it.effect("a message of the other kind (binary on JSON, text on MessagePack) gets a typed error", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const client = yield* connect(server.url)
        client.send(codec === "json" ? MessagePack.encode({ type: "ping" }) : JSON.stringify({ type: "ping" }))
        const error = yield* Effect.promise(() => client.next((f) => f.type === "error"))
        expect(error).toMatchObject({ code: "bad_frame" })
        expect(error.message).toMatch(codec === "json" ? /binary messages/ : /text messages/)
        client.send({ type: "command", id: "after", name: "fail", payload: {} })
        yield* Effect.promise(() => client.next((f) => f.type === "reply" && f.id === "after"))
        client.close()
      })
    )
  })
}
