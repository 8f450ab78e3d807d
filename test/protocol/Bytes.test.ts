/**
 * Bytes: a Uint8Array in the application, base64 text when encoded (the stored and JSON form), raw bytes when
 * encoded for MessagePack; decoding accepts both. And the MessagePack codec of frames around it.
 */
import { Result, Schema } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { Bytes, fromBase64, rawBytes, toBase64 } from "../../src/protocol/Bytes.ts"
import * as MessagePack from "../../src/protocol/MessagePack.ts"

const Shot = Schema.Struct({ step: Schema.Int, image: Bytes, thumbs: Schema.Array(Bytes) })
const encode = Schema.encodeUnknownResult(Shot)
const decode = Schema.decodeUnknownResult(Shot)

const same = (a: unknown, b: Uint8Array) => {
  expect(a).toBeInstanceOf(Uint8Array)
  expect(Buffer.from(a as Uint8Array).equals(Buffer.from(b))).toBe(true)
}

describe("Bytes", () => {
  it("encodes to base64, or to raw bytes inside rawBytes (nested fields included)", () => {
    const value = { step: 1, image: Uint8Array.from([0, 1, 254, 255]), thumbs: [Uint8Array.from([9])] }
    expect(Result.getOrThrow(encode(value))).toEqual({ step: 1, image: "AAH+/w==", thumbs: ["CQ=="] })
    const raw = Result.getOrThrow(rawBytes(() => encode(value))) as typeof value
    same(raw.image, value.image)
    same(raw.thumbs[0], value.thumbs[0]!)
    // the scope ends with the call
    expect(Result.getOrThrow(encode(value))).toMatchObject({ image: "AAH+/w==" })
  })

  it("decodes base64 text and raw bytes alike; refuses anything else with the field's path", () => {
    same(
      (Result.getOrThrow(decode({ step: 1, image: "AAH+/w==", thumbs: [] })) as { image: unknown }).image,
      Uint8Array.from([0, 1, 254, 255])
    )
    same(
      (Result.getOrThrow(decode({ step: 1, image: Uint8Array.from([7]), thumbs: [] })) as { image: unknown }).image,
      Uint8Array.from([7])
    )
    for (const bad of ["AAH", "AA$=", 42, null, [1, 2]]) {
      const result = decode({ step: 1, image: bad, thumbs: [] })
      expect(Result.isFailure(result), String(bad)).toBe(true)
      if (Result.isFailure(result)) expect(result.failure.message).toContain('["image"]')
    }
  })

  it("round-trips any bytes through base64 and through MessagePack bin", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (data) => {
        expect(Buffer.from(fromBase64(toBase64(data))).equals(Buffer.from(data))).toBe(true)
        const [back] = MessagePack.decodeAll(MessagePack.encode({ data })) as [{ data: Uint8Array }]
        expect(Buffer.from(back.data).equals(Buffer.from(data))).toBe(true)
      })
    )
  })
})

describe("MessagePack frames", () => {
  it("decodes several values back to back, and refuses truncated or never-used bytes", () => {
    const message = Buffer.concat([MessagePack.encode({ type: "ping" }), MessagePack.encode({ type: "pong" })])
    expect(MessagePack.decodeAll(message)).toEqual([{ type: "ping" }, { type: "pong" }])
    expect(() => MessagePack.decodeAll(Uint8Array.from([0x92, 0x01]))).toThrow()
    expect(() => MessagePack.decodeAll(Uint8Array.from([0xc1]))).toThrow()
    expect(() => MessagePack.decodeAll(new Uint8Array(0))).toThrow()
    // nesting deeper than the stack is refused too, and the decoder is usable afterwards
    expect(() => MessagePack.decodeAll(Buffer.concat([Buffer.alloc(200_000, 0x91), Buffer.from([1])]))).toThrow()
    expect(MessagePack.decodeAll(MessagePack.encode({ type: "ping" }))).toEqual([{ type: "ping" }])
  })

  it("reads 64-bit integers as numbers when they are safe, else as bigints (which no frame accepts)", () => {
    const safe = Buffer.from([0xcf, 0, 0, 0, 1, 0, 0, 0, 0])
    const huge = Buffer.from([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    expect(MessagePack.decodeAll(safe)).toEqual([2 ** 32])
    expect(typeof MessagePack.decodeAll(huge)[0]).toBe("bigint")
  })
})
