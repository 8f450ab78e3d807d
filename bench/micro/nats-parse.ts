/**
 * Micro-benchmark of receiving replayed entries from NATS in this process, no server: 1,000 JetStream deliveries
 * as the server sends them for a replay (HMSG with the $JS.ACK reply, the transport's position headers, a
 * 100-byte event) in 64 KiB chunks, read by nats.js's parser and by FastParser.ts, each alone and then with what
 * the transport does per message (nats.js's MsgImpl and `decodeDelivered`). Prints microseconds per message.
 * Run: node --import tsx bench/micro/nats-parse.ts [rounds, default 3]
 */
import { type Dispatcher, MsgImpl, Parser, type ParserEvent, type ProtocolHandler } from "@nats-io/nats-core/internal"
import type { Msg, MsgHdrsImpl } from "@nats-io/transport-node"
import { decodeDelivered, entryHeaders } from "../../src/transports/nats/codec.ts"
import { FastParser } from "../../src/transports/nats/FastParser.ts"

const rounds = Number(process.argv[2] ?? 3)
const messages = 1000
const parts: Array<Buffer> = []
for (let i = 0; i < messages; i++) {
  // the header block exactly as the transport stores it (stored headers are delivered as published)
  const publication = { event: "tick", data: "", version: 1, time: 1_764_000_000_000 }
  const stored = entryHeaders("AbCdEfGhIjKl", 10_000 + i, publication, 1_764_000_000_001, 20_000 + i, undefined)
  const headers = Buffer.from((stored as MsgHdrsImpl).encode()).toString("latin1")
  const payload = headers + JSON.stringify({ n: i, pad: "x".repeat(80) })
  const reply = `$JS.ACK.TIDINGS.abcdefghijklmnopqrstuv.1.${123_456 + i}.${1234 + i}.1764000000000000000.${8765 - i}`
  const line = `HMSG tidings.YmVuY2g6ZmFub3V0 12 ${reply} ${headers.length} ${payload.length}\r\n`
  parts.push(Buffer.from(`${line}${payload}\r\n`, "latin1"))
}
const all = Buffer.concat(parts)
const chunks: Array<Buffer> = []
for (let at = 0; at < all.length; at += 65_536) chunks.push(Buffer.from(all.subarray(at, at + 65_536)))

let decoded = 0
const parseOnly: Dispatcher<ParserEvent> = { push: () => undefined }
const withDecode: Dispatcher<ParserEvent> = {
  push: (event) => {
    const { msg, data } = event as ParserEvent
    if (msg === undefined || data === undefined) return
    const message = new MsgImpl(msg, data, undefined as unknown as ProtocolHandler)
    if (decodeDelivered("bench:fanout", message as Msg) !== undefined) decoded++
  }
}

/** Microseconds per message over `batches` passes over the chunks, after as many unmeasured ones. */
const measure = (make: () => { parse: (chunk: Uint8Array) => void }, batches = 500): number => {
  const pass = () => {
    const parser = make()
    for (const chunk of chunks) parser.parse(chunk)
  }
  for (let i = 0; i < batches; i++) pass()
  const start = performance.now()
  for (let i = 0; i < batches; i++) pass()
  return ((performance.now() - start) * 1000) / (batches * messages)
}

console.log(`${messages} deliveries, ${Math.round(all.length / messages)} bytes each, in ${chunks.length} chunks`)
for (let round = 1; round <= rounds; round++) {
  const natsJs = measure(() => new Parser(parseOnly))
  const fast = measure(() => new FastParser(parseOnly))
  decoded = 0
  const natsJsDecoded = measure(() => new Parser(withDecode))
  const fastDecoded = measure(() => new FastParser(withDecode))
  if (decoded !== 2000 * messages) throw new Error(`decoded ${decoded} of ${2000 * messages}`)
  console.log(
    `round ${round}: parse only: nats.js ${natsJs.toFixed(3)} µs, FastParser ${fast.toFixed(3)} µs; ` +
      `with MsgImpl + decodeDelivered: nats.js ${natsJsDecoded.toFixed(3)} µs, FastParser ${fastDecoded.toFixed(3)} µs`
  )
}
