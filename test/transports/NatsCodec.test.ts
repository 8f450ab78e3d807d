/**
 * Decoding a delivered JetStream message straight from its bytes (codec.ts `decodeDelivered`): the header block
 * as the transport writes it (the one-pass fast path) and the same headers in another order, with extra headers
 * or padded values (the general scan) decode to the same entry; a block without position headers is foreign.
 */
import { type Msg, MsgImpl } from "@nats-io/transport-node"
import { describe, expect, it } from "vitest"
import { decodeDelivered, Header } from "../../src/transports/nats/codec.ts"

const message = (headerLines: ReadonlyArray<string>, data: string): Msg => {
  const block = `NATS/1.0\r\n${headerLines.map((line) => `${line}\r\n`).join("")}\r\n`
  const bytes = Buffer.from(block + data)
  // a view into a larger buffer, as a socket chunk holding several messages would be
  const chunk = Buffer.concat([Buffer.from("xxxx"), bytes, Buffer.from("yyyy")])
  const view = new Uint8Array(chunk.buffer, chunk.byteOffset + 4, bytes.length)
  const args = {
    subject: new Uint8Array(),
    reply: new Uint8Array([1]),
    sid: 1,
    hdr: Buffer.byteLength(block),
    size: bytes.length
  }
  return new MsgImpl(args as never, view, {} as never) as unknown as Msg
}

const written = [
  `${Header.epoch}: ep0ch`,
  `${Header.offset}: 42`,
  `${Header.event}: tick%20tock`,
  `${Header.version}: 2`,
  `${Header.time}: 1700000000123`,
  `${Header.storedAt}: 1700000000456`,
  "Nats-Expected-Last-Subject-Sequence: 41"
]

describe("NATS delivered-message decoding", () => {
  it("reads the headers as written, in any order, with extra headers and padded values alike", () => {
    const expected = {
      seq: 0,
      epoch: "ep0ch",
      offset: 42,
      storedAt: 1700000000456,
      entry: {
        channel: "chat",
        epoch: "ep0ch",
        offset: 42,
        event: "tick tock",
        data: '{"n":1}',
        version: 2,
        time: 1700000000123
      }
    }
    expect(decodeDelivered("chat", message(written, '{"n":1}'))).toEqual(expected)
    const shuffled = [
      written[6]!,
      "X-Other: 1",
      written[3]!,
      written[0]!,
      written[5]!,
      written[1]!,
      written[4]!,
      written[2]!
    ]
    expect(decodeDelivered("chat", message(shuffled, '{"n":1}'))).toEqual(expected)
    const padded = written.map((line) => line.replace(": ", ":   "))
    expect(decodeDelivered("chat", message(padded, '{"n":1}'))).toEqual(expected)
    // a later duplicate of a header does not override the first (as nats.js reads it)
    expect(decodeDelivered("chat", message([...written, `${Header.offset}: 99`], '{"n":1}'))).toEqual(expected)
  })

  it("treats a message without position headers as foreign", () => {
    expect(decodeDelivered("chat", message(["X-Other: 1"], "{}"))).toBeUndefined()
    expect(decodeDelivered("chat", message(written.slice(1), "{}"))).toBeUndefined()
  })
})
