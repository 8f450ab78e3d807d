/**
 * FastParser.ts against nats.js's own parser: the same bytes, cut into chunks at every place and at random,
 * must give the same events; what nats.js refuses it refuses too. Then ParserSwap.ts on real connections to a
 * private `nats-server -js`: installed, used for requests, JetStream and subscriptions, kept across a reconnect,
 * and left out when the transport is told so.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { jetstreamManager } from "@nats-io/jetstream"
import { Kind, Parser, type ParserEvent, type ProtocolHandler } from "@nats-io/nats-core/internal"
import { connect, headers, type NatsConnection } from "@nats-io/transport-node"
import { Effect, Logger } from "effect"
import * as Nats from "../../src/transports/Nats.ts"
import { FastParser } from "../../src/transports/nats/FastParser.ts"
import { CHECKED_WITH, installedNatsCore, installFastParser } from "../../src/transports/nats/ParserSwap.ts"
import { type NatsServer, startNatsServer } from "../support/natsServer.ts"
import { requireBinary } from "../support/requireBinary.ts"
import { until } from "../support/until.ts"

const binary = requireBinary("nats-server", "NATS protocol parser")

const bytes = (text: string) => Buffer.from(text, "latin1")

/** An event as plain data, for comparison. */
const plain = (event: ParserEvent) => ({
  kind: event.kind,
  data: event.data === undefined ? undefined : Buffer.from(event.data).toString("latin1"),
  subject: event.msg === undefined ? undefined : Buffer.from(event.msg.subject).toString("latin1"),
  reply: event.msg?.reply === undefined ? undefined : Buffer.from(event.msg.reply).toString("latin1"),
  sid: event.msg?.sid,
  hdr: event.msg?.hdr,
  size: event.msg?.size
})

/** What `make`'s parser gives for `chunks`, as plain data (read right away: views may point into the chunks). */
const eventsOf = (
  make: (dispatcher: { push: (event: ParserEvent) => void }) => Parser | FastParser,
  chunks: Array<Buffer>
) => {
  const events: Array<ReturnType<typeof plain>> = []
  const parser = make({ push: (event) => events.push(plain(event)) })
  for (const chunk of chunks) parser.parse(chunk)
  return events
}
const natsJs = (dispatcher: { push: (event: ParserEvent) => void }) => new Parser(dispatcher)
const fast = (dispatcher: { push: (event: ParserEvent) => void }) => new FastParser(dispatcher)

const headerBlock = "NATS/1.0\r\nTidings-Epoch: AbC\r\nTidings-Offset: 7\r\n\r\n"
/** Everything a server sends, in the forms nats.js reads (case, blanks, line ends, payloads that look like lines). */
const stream = [
  'INFO {"server_id":"x","version":"2.9.10","headers":true,"max_payload":1048576}\r\n',
  "PING\r\n",
  "PONG\r\n",
  "+OK\r\n",
  "MSG a.b 1 5\r\nhello\r\n",
  "MSG a.b 12 _INBOX.abc.1 0\r\n\r\n",
  "msg lower 3 4\r\nMSG \r\n",
  // a payload holding what looks like operations
  "MSG tabs\t9  reply.to\t 11\r\nPING\r\nPONG!\r\n",
  `HMSG tidings.YmVu 4 ${headerBlock.length} ${headerBlock.length + 3}\r\n${headerBlock}abc\r\n`,
  `HMSG tidings.YmVu 4 $JS.ACK.T.c.1.2.3.1764000000000000000.9 ${headerBlock.length} ${headerBlock.length}\r\n${headerBlock}\r\n`,
  "HMSG _INBOX.x 2 28 28\r\nNATS/1.0 404 No Messages\r\n\r\n\r\n",
  "-ERR 'Unknown Protocol Operation'\r\n",
  "INFO\t {}\n",
  "ping\r\n"
].join("")

/** `text` cut at the given places. */
const cut = (text: Buffer, at: Array<number>) => {
  const chunks: Array<Buffer> = []
  let from = 0
  for (const end of [...at, text.length]) {
    chunks.push(Buffer.from(text.subarray(from, end)))
    from = end
  }
  return chunks
}

/** Deterministic pseudo-random numbers (a failing cut can be replayed). */
const random = (seed: number) => () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
  return seed / 2 ** 31
}

describe("FastParser", () => {
  const all = bytes(stream)
  const expected = eventsOf(natsJs, [all])

  it("was checked against the installed nats.js", () => {
    // a new nats.js keeps its own parser (ParserSwap.ts) until these tests pass against it and CHECKED_WITH says so
    expect(
      installedNatsCore,
      `@nats-io/nats-core is ${installedNatsCore}, FastParser was checked with ${CHECKED_WITH}: run this file against the new release's Parser, then update CHECKED_WITH in src/transports/nats/ParserSwap.ts`
    ).toBe(CHECKED_WITH)
  })

  it("gives nats.js's events for everything a server sends", () => {
    expect(expected.map((event) => event.kind)).toEqual([
      Kind.INFO,
      Kind.PING,
      Kind.PONG,
      Kind.OK,
      Kind.MSG,
      Kind.MSG,
      Kind.MSG,
      Kind.MSG,
      Kind.MSG,
      Kind.MSG,
      Kind.MSG,
      Kind.ERR,
      Kind.INFO,
      Kind.PING
    ])
    expect(eventsOf(fast, [all])).toEqual(expected)
  })

  it("gives the same events wherever the bytes are cut", () => {
    for (let at = 1; at < all.length; at++) expect(eventsOf(fast, cut(all, [at])), `cut at ${at}`).toEqual(expected)
    const next = random(7)
    for (let round = 0; round < 200; round++) {
      const at: Array<number> = []
      for (let end = Math.ceil(next() * 9); end < all.length; end += Math.ceil(next() * 9)) at.push(end)
      expect(eventsOf(fast, cut(all, at)), `cuts ${at.join(",")}`).toEqual(expected)
    }
  })

  it("joins a large message's chunks once it is complete", () => {
    const payload = "x".repeat(1_000_000)
    const text = bytes(`MSG big 1 ${payload.length}\r\n${payload}\r\nPING\r\n`)
    const at = Array.from({ length: 999 }, (_, i) => (i + 1) * 1001)
    const events = eventsOf(fast, cut(text, at))
    expect(events).toEqual(eventsOf(natsJs, [text]))
    expect(events[0]?.size).toBe(1_000_000)
    expect(events[1]?.kind).toBe(Kind.PING)
  })

  it("gives messages a subject and reply that can be set, as nats.js's parser does", () => {
    const events: Array<ParserEvent> = []
    new FastParser({ push: (event) => void events.push(event as ParserEvent) }).parse(bytes("MSG s 1 r 1\r\nx\r\n"))
    const msg: { subject: Uint8Array; reply?: Uint8Array | undefined } = events[0]!.msg!
    expect(Buffer.from(msg.reply!).toString()).toBe("r")
    msg.subject = bytes("other")
    msg.reply = undefined
    expect(Buffer.from(msg.subject).toString()).toBe("other")
    expect(msg.reply).toBeUndefined()
  })

  it("refuses what nats.js refuses", () => {
    const refused = [
      "XYZ\r\n",
      "MSG a\r\n",
      "MSG a x 1\r\nx\r\n",
      "MSG a 1 -1\r\n",
      "MSG a 1 b c d e\r\n",
      "HMSG a 1 9 3\r\nabc\r\n",
      "-EXX 'x'\r\n",
      "INFOX\r\n",
      "PONX\r\n",
      `MSG a 1 ${64 * 1024 * 1024 + 1}\r\n`
    ]
    for (const text of refused) {
      expect(() => eventsOf(natsJs, [bytes(text)]), `nats.js: ${JSON.stringify(text)}`).toThrow()
      expect(() => eventsOf(fast, [bytes(text)]), JSON.stringify(text)).toThrow(/NATS protocol/)
    }
  })

  it("refuses a message whose payload is not followed by a line end", () => {
    expect(() => eventsOf(fast, [bytes("MSG a 1 3\r\nabcdef\r\n")])).toThrow(/message end/)
  })
})

const describeNats = binary === undefined ? describe.skip : describe

describeNats("ParserSwap on a nats-server", () => {
  let server: NatsServer
  const connections: Array<NatsConnection> = []
  const open = async () => {
    const nc = await connect({ servers: server.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 })
    connections.push(nc)
    return nc
  }
  const parserOf = (nc: NatsConnection): unknown => (nc as unknown as { protocol: ProtocolHandler }).protocol.parser

  beforeAll(async () => {
    server = await startNatsServer({ binary: binary! })
  })
  afterAll(async () => {
    for (const nc of connections) await nc.close().catch(() => undefined)
    await server?.close()
  })

  it("installs on a connection, which then carries requests, headers and JetStream", async () => {
    const nc = await open()
    expect(parserOf(nc)).toBeInstanceOf(Parser)
    expect(installFastParser(nc)).toBe(true)
    expect(parserOf(nc)).toBeInstanceOf(FastParser)
    expect(installFastParser(nc)).toBe(true)

    nc.subscribe("echo", {
      callback: (_error, message) => {
        message.respond(message.data, message.headers ? { headers: message.headers } : {})
      }
    })
    const sent = headers()
    sent.set("X-Test", "yes")
    const reply = await nc.request("echo", "ping", { timeout: 2000, headers: sent })
    expect(reply.string()).toBe("ping")
    expect(reply.headers?.get("X-Test")).toBe("yes")

    const jsm = await jetstreamManager(nc)
    await jsm.streams.add({ name: "PARSER_SWAP", subjects: ["parser-swap.>"] })
    expect((await jsm.streams.info("PARSER_SWAP")).config.name).toBe("PARSER_SWAP")
  })

  it("stays installed across a reconnect", async () => {
    const nc = await open()
    expect(installFastParser(nc)).toBe(true)
    const received: Array<string> = []
    nc.subscribe("after", { callback: (_error, message) => void received.push(message.string()) })
    await nc.flush()
    await server.restart()
    // a reconnect makes nats.js assign a new parser of its own
    expect(
      await until(() => !nc.isClosed() && (nc as unknown as { protocol: ProtocolHandler }).protocol.connected, 10_000)
    ).toBe(true)
    await nc.flush()
    expect(parserOf(nc)).toBeInstanceOf(FastParser)
    nc.publish("after", "still here")
    expect(await until(() => received.length === 1, 5000)).toBe(true)
    expect(received).toEqual(["still here"])
  })

  it.effect("is installed by the transport without a warning", () =>
    Effect.gen(function* () {
      const logged: Array<string> = []
      const capture = Logger.make((options) => void logged.push(JSON.stringify(options.message)))
      yield* Effect.scoped(
        Effect.gen(function* () {
          const transport = yield* Nats.make({ url: server.url, stream: "PARSER_SWAP_T", subjectPrefix: "ps" })
          const position = yield* transport.append("c", { event: "e", data: "{}", version: 1, time: 1 })
          const page = yield* transport.read("c", undefined, 10)
          expect(page.entries.map((entry) => entry.offset)).toEqual([position.offset])
        })
      ).pipe(Effect.provide(Logger.layer([capture])))
      expect(logged.filter((message) => message.includes("parser"))).toEqual([])
    })
  )
})
