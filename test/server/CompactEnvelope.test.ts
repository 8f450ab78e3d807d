/**
 * The compact envelope on a real server, seen from a raw WebSocket: it is chosen only when offered (a client that
 * does not offer it keeps self-describing frames), an `alias` frame names the channel and epoch before the first
 * array event of a subscription and again after the subscription is made anew, two channels get different
 * aliases, the array events carry what the self-describing frames carry, and an event with a 100-byte payload
 * takes at most 150 bytes.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { TidingsServer } from "../../src/server/Server.ts"
import { connectRaw, type Frame, type RawClient } from "./support/rawClient.ts"
import { next, subscribe, unique } from "./support/session.ts"
import { sign, testServerLayer } from "./support/testServer.ts"

const FULL = "tidings.chat.v2.json"
const COMPACT = "tidings.chat.v2.json.compact"

const authenticated = (url: string, protocols: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    const client = await connectRaw(url, { protocols })
    client.send({ type: "authenticate", token: await sign({ sub: "alice", channels: ["room:*"] }) })
    await client.next((f) => f.type === "welcome")
    return client
  })

const isArray = (f: Frame): boolean => Array.isArray(f)
const arrays = (client: RawClient): Array<Array<unknown>> => client.frames.filter(isArray) as never
const aliasFrames = (client: RawClient, channel: string) =>
  client.frames.filter((f) => f.type === "alias" && f.channel === channel)

layer(testServerLayer(), { excludeTestServices: true })("compact envelope", (it) => {
  it.effect("is chosen only when offered: first-listed wins at one version, unknown envelopes are ignored", () =>
    Effect.gen(function* () {
      const { url } = yield* TidingsServer
      const selected = (protocols: ReadonlyArray<string>) =>
        Effect.promise(async () => {
          const client = await connectRaw(url, { protocols })
          client.close()
          return client.ws.protocol
        })
      expect(yield* selected([COMPACT, FULL])).toBe(COMPACT)
      expect(yield* selected([FULL, COMPACT])).toBe(FULL)
      expect(yield* selected(["tidings.chat.v2.msgpack.compact"])).toBe("tidings.chat.v2.msgpack.compact")
      expect(yield* selected(["tidings.chat.v2.json.tiny", FULL])).toBe(FULL)
      expect(yield* selected(["tidings.chat.v1.json.compact", FULL])).toBe(FULL)
    })
  )

  it.effect("announces the alias before the first event; array events carry what full frames carry", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const channel = unique("room")
      const other = unique("room")
      yield* server.publishUnknown(channel, "said", { from: "x", body: "before" })
      const full = yield* authenticated(server.url, [FULL])
      const compact = yield* authenticated(server.url, [COMPACT])
      for (const client of [full, compact]) yield* subscribe(client, channel, { epoch: "none", offset: 0 })
      yield* subscribe(compact, other)
      yield* server.publishUnknown(other, "said", { from: "y", body: "elsewhere" })
      const { epoch } = yield* server.publishUnknown(channel, "said", { from: "x", body: "live" })
      yield* next(compact, (f) => isArray(f) && (f as unknown as Array<unknown>)[1] === 2)
      yield* next(full, (f) => f.type === "event" && f.offset === 2)

      // the unknown position was reset to the start, then both got offset 2 live
      const expected = full.frames
        .filter((f) => f.type === "event")
        .map((f) => [f.channel, f.epoch, f.offset, f.event, f.data, f.time])
      const [announced] = aliasFrames(compact, channel)
      expect(announced).toMatchObject({ type: "alias", channel, epoch })
      const alias = announced!.alias as number
      const got = arrays(compact)
        .filter((a) => a[0] === alias)
        .map(([, offset, event, data, time]) => [channel, epoch, offset, event, data, time])
      expect(got).toEqual(expected)
      // the alias frame came before that channel's first event
      const firstEvent = compact.frames.findIndex((f) => isArray(f) && (f as unknown as Array<unknown>)[0] === alias)
      expect(compact.frames.indexOf(announced!)).toBeLessThan(firstEvent)
      // another channel, another alias
      const [otherAlias] = aliasFrames(compact, other)
      expect(otherAlias?.alias).not.toBe(alias)
      yield* next(compact, (f) => isArray(f) && (f as unknown as Array<unknown>)[0] === otherAlias?.alias)
      expect(arrays(compact).find((a) => a[0] === otherAlias?.alias)?.[3]).toEqual({ from: "y", body: "elsewhere" })
      // no self-describing event frame on the compact connection, none of the compact ones on the other
      expect(compact.frames.some((f) => f.type === "event")).toBe(false)
      expect(full.frames.some((f) => isArray(f) || f.type === "alias")).toBe(false)
      full.close()
      compact.close()
    })
  )

  it.effect("announces again after the subscription is made anew", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const channel = unique("room")
      const compact = yield* authenticated(server.url, [COMPACT])
      yield* subscribe(compact, channel)
      yield* server.publishUnknown(channel, "said", { from: "x", body: "one" })
      yield* next(compact, (f) => isArray(f))
      compact.send({ type: "unsubscribe", channel })
      yield* next(compact, (f) => f.type === "unsubscribed")
      yield* subscribe(compact, channel)
      yield* server.publishUnknown(channel, "said", { from: "x", body: "two" })
      yield* next(compact, (f) => isArray(f) && (f as unknown as Array<unknown>)[1] === 2)
      const frames = compact.frames.filter((f) => f.type === "alias" || isArray(f))
      expect(frames.map((f) => (isArray(f) ? "event" : "alias"))).toEqual(["alias", "event", "alias", "event"])
      compact.close()
    })
  )

  it.effect("carries an event with a 100-byte payload in at most 150 bytes of JSON", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      // a channel name and event name as an agent protocol has them
      const channel = `room:${"5a766dc3-be4a-4b8e-9d2f-0c1e2a3b4c5d"}`
      const data = { from: "assistant", body: "x".repeat(70) }
      expect(JSON.stringify(data).length).toBe(100)
      const full = yield* authenticated(server.url, [FULL])
      const compact = yield* authenticated(server.url, [COMPACT])
      for (const client of [full, compact]) yield* subscribe(client, channel)
      yield* server.publishUnknown(channel, "said", data)
      const fullFrame = yield* next(full, (f) => f.type === "event")
      const compactFrame = yield* next(compact, (f) => isArray(f))
      const fullBytes = Buffer.byteLength(JSON.stringify(fullFrame))
      const compactBytes = Buffer.byteLength(JSON.stringify(compactFrame))
      process.stdout.write(
        `100-byte payload: event frame ${fullBytes} bytes self-describing, ${compactBytes} compact\n`
      )
      expect(compactBytes).toBeLessThanOrEqual(150)
      expect(fullBytes - compactBytes).toBeGreaterThanOrEqual(90)
      full.close()
      compact.close()
    })
  )
})
