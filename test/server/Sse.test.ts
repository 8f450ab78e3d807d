/**
 * A channel as Server-Sent Events (src/server/http/Sse.ts), read with a plain Node HTTP client as curl would:
 * the events from the start, then live; a reconnect with `Last-Event-ID` gets exactly the events it missed, in
 * order; a position older than retention gets an explicit `reset`; the protocol version by `?v=`; a token without
 * read rights gets 403 and no stream, none at all 401; open streams and deliveries are in `/metrics`.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { TidingsServer } from "../../src/server/Server.ts"
import { defaultRetention } from "../../src/transports/Transport.ts"
import { eventually } from "../support/until.ts"
import { type Message, openStream } from "./support/sseClient.ts"
import { sign, testServerLayer } from "./support/testServer.ts"

const unique = (prefix: string) => `${prefix}:${Math.random().toString(36).slice(2, 10)}`
const bearer = (claims: Record<string, unknown>) =>
  Effect.promise(async () => ({ authorization: `Bearer ${await sign(claims)}` }))
const path = (channel: string, query = "") => `/v1/channels/${encodeURIComponent(channel)}/events${query}`
const bodies = (messages: ReadonlyArray<Message>) =>
  messages.filter((m) => m.event === "said").map((m) => (m.data as { body: string }).body)

layer(
  testServerLayer({
    transport: {
      retention: (channel) =>
        channel.includes("small") ? { maxEntries: 5, maxAgeMs: defaultRetention.maxAgeMs } : defaultRetention
    }
  }),
  { excludeTestServices: true }
)("channels as Server-Sent Events", (it) => {
  it.effect("from the start, then live; a reconnect with Last-Event-ID gets exactly what it missed", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const channel = unique("room")
      const auth = yield* bearer({ sub: "ann", channels: ["room:*"] })
      const say = (body: string) => server.publishUnknown(channel, "said", { from: "ops", body })
      for (const n of [1, 2, 3]) yield* say(`m${n}`)
      const first = yield* openStream(server.port, path(channel, "?fromStart=1"), auth)
      expect(first.status).toBe(200)
      yield* eventually("3 events", () => bodies(first.messages).length === 3)
      yield* say("m4")
      yield* eventually("live event", () => bodies(first.messages).length === 4)
      expect(bodies(first.messages)).toEqual(["m1", "m2", "m3", "m4"])
      const lastId = first.messages.at(-1)!.id!
      expect(lastId).toMatch(/^.+:4$/)
      first.close()

      for (const n of [5, 6, 7]) yield* say(`m${n}`)
      const again = yield* openStream(server.port, path(channel), { ...auth, "last-event-id": lastId })
      yield* eventually("missed events", () => bodies(again.messages).length === 3)
      yield* say("m8")
      yield* eventually("live after resume", () => bodies(again.messages).length === 4)
      expect(bodies(again.messages)).toEqual(["m5", "m6", "m7", "m8"])
      expect(again.messages.map((m) => Number(m.id!.split(":").at(-1)))).toEqual([5, 6, 7, 8])
      // the same by hand, in the URL (curl), and in v1's shape
      const v1 = yield* openStream(server.port, path(channel, `?v=1&lastEventId=${encodeURIComponent(lastId)}`), auth)
      yield* eventually("v1 events", () => v1.messages.length === 4)
      expect(v1.messages[0]).toMatchObject({ event: "said", data: { from: "ops", text: "m5" } })
      again.close()
      v1.close()
    })
  )

  it.effect("a position older than retention gets an explicit reset, then what follows", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const channel = unique("room-small")
      const auth = yield* bearer({ sub: "ann", channels: ["room-small:*"] })
      let epoch = ""
      for (let n = 1; n <= 20; n++) {
        epoch = (yield* server.publishUnknown(channel, "said", { from: "ops", body: `m${n}` })).epoch
      }
      const stream = yield* openStream(server.port, path(channel), { ...auth, "last-event-id": `${epoch}:2` })
      yield* eventually("reset", () => stream.messages.length > 0)
      expect(stream.messages[0]).toMatchObject({ event: "reset", id: `${epoch}:20`, data: { reason: "trimmed" } })
      yield* server.publishUnknown(channel, "said", { from: "ops", body: "m21" })
      yield* eventually("live after reset", () => bodies(stream.messages).length === 1)
      expect(bodies(stream.messages)).toEqual(["m21"])
      stream.close()
    })
  )

  it.effect("refuses a token without read rights (403) or none (401), a bad id (400); counts streams", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const channel = unique("room")
      const forbidden = yield* openStream(server.port, path(channel), yield* bearer({ sub: "bob", channels: ["x:*"] }))
      expect(forbidden.status).toBe(403)
      const anonymous = yield* openStream(server.port, path(channel))
      expect(anonymous.status).toBe(401)
      const bad = yield* openStream(server.port, path(channel), {
        ...(yield* bearer({ sub: "ann", channels: ["room:*"] })),
        "last-event-id": "nonsense"
      })
      expect(bad.status).toBe(400)
      yield* Effect.sleep(100)
      expect(forbidden.messages).toEqual([])
      const token = yield* Effect.promise(() => sign({ sub: "ann", channels: ["room:*"] }))
      const open = yield* openStream(server.port, path(channel, `?token=${token}`))
      expect(open.status).toBe(200)
      yield* server.publishUnknown(channel, "said", { from: "ops", body: "hi" })
      yield* eventually("event", () => open.messages.length === 1)
      yield* eventually("the earlier tests' streams closed", () => server.stats.sseOpen === 1)
      const metrics = yield* Effect.promise(() =>
        fetch(`http://127.0.0.1:${server.port}/metrics`).then((r) => r.text())
      )
      expect(metrics).toMatch(/tidings_sse_streams_open 1\b/)
      expect(metrics).toMatch(/tidings_sse_deliveries_total [1-9]/)
      open.close()
      yield* eventually("stream closed", () => server.stats.sseOpen === 0)
    })
  )
})
