/**
 * `Bytes`: a field of raw bytes (a screenshot, a file) in a protocol catalog. The application sees a Uint8Array;
 * the JSON codec carries it as padded standard base64 text; the MessagePack codec as MessagePack `bin`.
 *
 * Decoding accepts either form, so one schema reads both codecs. Encoding produces base64 — the form that is
 * stored: a transport's log holds an event's data as JSON text (Transport.ts), the same for every codec and for
 * HTTP publish and SSE. Only the MessagePack encoders (ProtocolCodec's `msgpack` paths) encode within `rawBytes`,
 * which makes every Bytes field encoded during that call stay a Uint8Array, so that a stored event is turned
 * into raw bytes once per event and version when its MessagePack frame is built, never per recipient.
 */
import { Schema, SchemaTransformation } from "effect"

/** Node's Buffer when present (fast native base64); browsers use atob/btoa. */
const NodeBuffer = (
  globalThis as {
    Buffer?: {
      from(data: string, encoding: "base64"): Uint8Array
      from(data: ArrayBufferLike, offset: number, length: number): { toString(encoding: "base64"): string }
    }
  }
).Buffer

export const toBase64 = (bytes: Uint8Array): string => {
  if (NodeBuffer) return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")
  let binary = ""
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  }
  return btoa(binary)
}

export const fromBase64 = (text: string): Uint8Array => {
  if (NodeBuffer) return NodeBuffer.from(text, "base64")
  const binary = atob(text)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

/**
 * Padded standard base64 (RFC 4648 §4). One character class and a length check, not a regexp of groups, which
 * overflows V8's regexp stack on a few MB of text.
 */
const base64Alphabet = /^[A-Za-z0-9+/]*={0,2}$/

export const Base64Text = Schema.String.check(
  Schema.makeFilter((text: string) => text.length % 4 === 0 && base64Alphabet.test(text), {
    expected: "padded standard base64",
    toJsonSchema: () => ({ pattern: base64Alphabet.source, contentEncoding: "base64" })
  })
).annotate({ description: "Bytes as padded standard base64" })

/** How many `rawBytes` calls are running (encoders are synchronous, so this is a dynamic scope, not shared state). */
let rawDepth = 0

/** Runs a synchronous encode in which Bytes fields stay Uint8Arrays (for MessagePack), instead of base64 text. */
export const rawBytes = <A>(encode: () => A): A => {
  rawDepth++
  try {
    return encode()
  } finally {
    rawDepth--
  }
}

/** Bytes on the wire: base64 text (JSON) or a byte array (MessagePack `bin`). */
const WireBytes = Schema.Union([Base64Text, Schema.Uint8Array])

export const Bytes = WireBytes.pipe(
  Schema.decodeTo(
    Schema.Uint8Array,
    SchemaTransformation.transform<Uint8Array, string | Uint8Array>({
      decode: (wire) => (typeof wire === "string" ? fromBase64(wire) : wire),
      encode: (bytes) => (rawDepth > 0 ? bytes : toBase64(bytes))
    })
  )
).annotate({ identifier: "Bytes", description: "Bytes: base64 text in JSON, `bin` in MessagePack" })
export type Bytes = typeof Bytes.Type
