/**
 * The two wire codecs side by side on one server: negotiation (highest version first, then the codec the client
 * listed first), JSON and MessagePack clients on one channel receiving the same events live and in replay, byte
 * fields as base64 in JSON and raw `bin` in MessagePack (events, commands, replies) while the log keeps base64
 * JSON text, and an event frame built once per codec and version.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { describe, it } from "vitest"
import * as Client from "../../src/client/node.ts"
import * as MessagePack from "../../src/protocol/MessagePack.ts"
import { ProtocolCodec } from "../../src/protocol/ProtocolCodec.ts"
import { EntryFrames } from "../../src/server/fanout/Fanout.ts"
import { TidingsServer } from "../../src/server/Server.ts"
import { Transport } from "../../src/transports/Transport.ts"
import { eventually } from "../support/until.ts"
import { ChatProtocol } from "./support/chatProtocol.ts"
import { FILES_API_KEY, FilesProtocol, filesServerLayer } from "./support/filesProtocol.ts"
import { connectRaw, type RawClient } from "./support/rawClient.ts"
import { next, subscribe, unique } from "./support/session.ts"
import { sign, testServerLayer } from "./support/testServer.ts"

const protocolOf = (url: string, protocols: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    const client = await connectRaw(url, { protocols })
    client.close()
    return client.ws.protocol
  })

/** A raw client offering `protocol`, authenticated. */
const rawClient = (url: string, protocol: string, channels = ["room:*", "files:*"]) =>
  Effect.promise(async () => {
    const client = await connectRaw(url, { protocols: [protocol] })
    client.send({ type: "authenticate", token: await sign({ sub: "alice", channels }) })
    await client.next((f) => f.type === "welcome")
    return client
  })

layer(testServerLayer(), { excludeTestServices: true })("codec negotiation", (it) => {
  it.effect("picks the highest version, then the codec the client listed first", () =>
    Effect.gen(function* () {
      const { url } = yield* TidingsServer
      expect(yield* protocolOf(url, ["tidings.chat.v2.msgpack", "tidings.chat.v2.json"])).toBe(
        "tidings.chat.v2.msgpack"
      )
      expect(yield* protocolOf(url, ["tidings.chat.v2.json", "tidings.chat.v2.msgpack"])).toBe("tidings.chat.v2.json")
      expect(yield* protocolOf(url, ["tidings.chat.v1.msgpack", "tidings.chat.v2.json"])).toBe("tidings.chat.v2.json")
      expect(yield* protocolOf(url, ["tidings.chat.v2.cbor", "tidings.chat.v1.msgpack"])).toBe(
        "tidings.chat.v1.msgpack"
      )
    })
  )

  it.effect(
    "JSON and MessagePack clients, compact or not, on one channel receive the same events, live and in replay",
    () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const channel = unique("room")
        const { epoch } = yield* server.publishUnknown(channel, "said", { from: "x", body: "before" })
        const token = () => sign({ sub: "bob", channels: ["room:*"] })
        const forms = [
          { codec: "json", compact: false },
          { codec: "msgpack", compact: false },
          { codec: "json", compact: true },
          { codec: "msgpack", compact: true }
        ] as const
        const clients = forms.map((form) => Client.make(ChatProtocol, { url: server.url, version: 2, token, ...form }))
        const seen = clients.map(() => [] as Array<unknown>)
        clients.forEach((client, i) => {
          client.subscribe(channel, {
            fromStart: true,
            onEvent: (e) =>
              void seen[i]!.push([e.meta.channel, e.meta.epoch, e.meta.offset, e.event, e.data, e.meta.time])
          })
        })
        yield* Effect.promise(() => Promise.all(clients.map((c) => c.ready())))
        yield* Effect.promise(() => clients[1]!.command("send", { channel, body: "from msgpack", loud: true }))
        yield* Effect.promise(() => clients[0]!.command("send", { channel, body: "from json", loud: false }))
        for (let n = 1; n <= 20; n++) yield* server.publishUnknown(channel, "tick", { n })
        yield* eventually("every client has the 23 events", () => seen.every((s) => s.length === 23), 5_000)
        for (const other of seen.slice(1)) expect(other).toEqual(seen[0])
        expect(seen[0]!.slice(0, 3).map((e) => (e as Array<unknown>).slice(0, 5))).toEqual([
          [channel, epoch, 1, "said", { from: "x", body: "before" }],
          [channel, epoch, 2, "shout", { from: "bob", body: "from msgpack" }],
          [channel, epoch, 3, "said", { from: "bob", body: "from json" }]
        ])
        for (const client of clients) client.close()
      })
  )

  it.effect("a malformed MessagePack frame gets the same typed error as bad JSON", () =>
    Effect.gen(function* () {
      const { url } = yield* TidingsServer
      const json = yield* rawClient(url, "tidings.chat.v2.json")
      const msgpack = yield* rawClient(url, "tidings.chat.v2.msgpack")
      json.send("{oops")
      msgpack.send(Uint8Array.from([0xc1]))
      const errors = yield* Effect.all([json, msgpack].map((c) => next(c, (f) => f.type === "error")))
      expect(errors[0]).toMatchObject({ code: "bad_json" })
      expect(errors[1]).toMatchObject({ code: "bad_json", message: "the message is not valid MessagePack" })
      json.close()
      msgpack.close()
    })
  )
})

const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff)
const base64 = (data: Uint8Array) => Buffer.from(data).toString("base64")

layer(filesServerLayer(), { excludeTestServices: true })("byte fields", (it) => {
  it.effect("travel as base64 in JSON and raw bin in MessagePack; the log keeps base64 JSON text", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const transport = yield* Transport
      const channel = unique("files")
      const json = yield* rawClient(server.url, "tidings.files.v1.json")
      const msgpack = yield* rawClient(server.url, "tidings.files.v1.msgpack")
      yield* subscribe(json, channel)
      yield* subscribe(msgpack, channel)
      const image = bytes(1000)
      yield* server.publishUnknown(channel, "shot", { step: 1, image })
      const [asText, asBinary] = yield* Effect.all(
        [json, msgpack].map((c: RawClient) => next(c, (f) => f.type === "event" && f.offset === 1))
      )
      expect(asText!.data).toEqual({ step: 1, image: base64(image) })
      const raw = (asBinary!.data as { image: unknown }).image
      expect(raw).toBeInstanceOf(Uint8Array)
      expect(Buffer.from(raw as Uint8Array).equals(Buffer.from(image))).toBe(true)
      const stored = yield* transport.read(channel, undefined, 10)
      expect(JSON.parse(stored.entries[0]!.data)).toEqual({ step: 1, image: base64(image) })

      // commands: raw bytes up over MessagePack, base64 up over JSON; replies echo them in the same form
      const up = bytes(300)
      msgpack.send({ type: "command", id: "m", name: "upload", payload: { channel, content: up } })
      json.send({ type: "command", id: "j", name: "upload", payload: { channel, content: base64(up) } })
      const replyM = yield* next(msgpack, (f) => f.type === "reply" && f.id === "m")
      const replyJ = yield* next(json, (f) => f.type === "reply" && f.id === "j")
      expect(replyJ).toMatchObject({ ok: true, result: { size: 300, echo: base64(up) } })
      const echo = (replyM.result as { echo: unknown }).echo
      expect(echo).toBeInstanceOf(Uint8Array)
      expect(Buffer.from(echo as Uint8Array).equals(Buffer.from(up))).toBe(true)
      // bad base64 and a wrong type are invalid payloads with the path of the field, in either codec
      json.send({ type: "command", id: "bad", name: "upload", payload: { channel, content: "not base64!" } })
      msgpack.send({ type: "command", id: "bad", name: "upload", payload: { channel, content: 42 } })
      for (const client of [json, msgpack]) {
        expect(yield* next(client, (f) => f.type === "error" && f.id === "bad")).toMatchObject({
          code: "invalid_payload",
          path: ["payload", "content"]
        })
      }
      json.close()
      msgpack.close()
    })
  )

  it.effect("can be published over HTTP as MessagePack bin, stored as base64", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const transport = yield* Transport
      const channel = unique("files")
      const json = yield* rawClient(server.url, "tidings.files.v1.json")
      yield* subscribe(json, channel)
      const image = bytes(2000)
      const post = (body: Uint8Array) =>
        Effect.promise(() =>
          fetch(`http://127.0.0.1:${server.port}/v1/channels/${channel}/events`, {
            method: "POST",
            headers: { authorization: `Bearer ${FILES_API_KEY}`, "content-type": "application/msgpack" },
            body: Buffer.from(body)
          }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }))
        )
      const ok = yield* post(MessagePack.encode({ event: "shot", data: { step: 2, image } }))
      expect(ok).toMatchObject({ status: 200, body: { positions: [{ offset: 1 }] } })
      const event = yield* next(json, (f) => f.type === "event" && f.offset === 1)
      expect(event.data).toEqual({ step: 2, image: base64(image) })
      const stored = yield* transport.read(channel, undefined, 10)
      expect(JSON.parse(stored.entries[0]!.data)).toEqual({ step: 2, image: base64(image) })
      expect(yield* post(Uint8Array.from([0x92, 0x01]))).toMatchObject({ status: 400, body: { error: "bad_json" } })
      expect(yield* post(MessagePack.encode({ event: "shot", data: { step: 2, image: "%%" } }))).toMatchObject({
        status: 400,
        body: { error: "invalid_event", path: ["data", "image"] }
      })
      json.close()
    })
  )

  it.effect("are Uint8Arrays in the typed client with either codec, through events, commands and replies", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const channel = unique("files")
      const token = () => sign({ sub: "carol", channels: ["files:*"] })
      const clients = (["json", "msgpack"] as const).map((codec) =>
        Client.make(FilesProtocol, { url: server.url, version: 1, token, codec })
      )
      const images = clients.map(() => [] as Array<Uint8Array>)
      clients.forEach((client, i) => {
        client.on("shot", (data) => void images[i]!.push(data.image))
      })
      yield* Effect.promise(() => Promise.all(clients.map((c) => c.subscribe(channel).ready())))
      const content = bytes(5000)
      const results = yield* Effect.promise(() =>
        Promise.all(clients.map((c) => c.command("upload", { channel, content })))
      )
      for (const result of results) {
        expect(result.echo).toBeInstanceOf(Uint8Array)
        expect(Buffer.from(result.echo).equals(Buffer.from(content))).toBe(true)
      }
      yield* eventually("both clients have both images", () => images.every((list) => list.length === 2), 5_000)
      for (const image of images.flat()) expect(Buffer.from(image).equals(Buffer.from(content))).toBe(true)
      for (const client of clients) client.close()
    })
  )
})

describe("event frames", () => {
  /** The frames of a `shot` entry (offset 7, time 5) with an image of `size` bytes, on a channel of alias 2. */
  const shotFrames = (size: number) => {
    const image = bytes(size)
    const data = JSON.stringify({ step: 3, image: base64(image) })
    const entry = { channel: "files:x", epoch: "e", offset: 7, event: "shot", data, version: 1, time: 5 }
    return { image, frames: new EntryFrames(entry, 2, new ProtocolCodec(FilesProtocol), () => undefined) }
  }

  it("are built once per codec and version, whatever the number of recipients", () => {
    const { image, frames } = shotFrames(64)
    const msgpack = frames.forVersion(1, "msgpack")!
    const json = frames.forVersion(1, "json")!
    expect(frames.forVersion(1, "msgpack")).toBe(msgpack)
    expect(frames.forVersion(1, "json")).toBe(json)
    expect(msgpack.binary).toBe(true)
    expect(json.binary).toBe(false)
    const [decoded] = MessagePack.decodeAll(msgpack.bytes) as [{ data: { image: Uint8Array } }]
    expect(decoded).toMatchObject({
      type: "event",
      channel: "files:x",
      epoch: "e",
      offset: 7,
      event: "shot",
      time: 5
    })
    expect(Buffer.from(decoded.data.image).equals(Buffer.from(image))).toBe(true)
    expect(JSON.parse(json.payload as string).data).toEqual({ step: 3, image: base64(image) })
  })

  it("have a compact form per codec: [alias, offset, event, data, time], bytes raw in MessagePack", () => {
    const { image, frames } = shotFrames(16)
    const json = frames.forVersion(1, "json", true)!
    expect(JSON.parse(json.payload as string)).toEqual([2, 7, "shot", { step: 3, image: base64(image) }, 5])
    const [decoded] = MessagePack.decodeAll(frames.forVersion(1, "msgpack", true)!.bytes) as [
      [number, number, string, { image: Uint8Array }, number]
    ]
    expect([decoded[0], decoded[1], decoded[2], decoded[4]]).toEqual([2, 7, "shot", 5])
    expect(Buffer.from(decoded[3].image).equals(Buffer.from(image))).toBe(true)
    expect(frames.forVersion(1, "msgpack", true)).not.toBe(frames.forVersion(1, "msgpack"))
  })
})
