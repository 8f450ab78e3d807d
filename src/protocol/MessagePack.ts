/**
 * The MessagePack codec of a connection that negotiated `msgpack`: frames are the same objects as in JSON (see
 * Frames.ts), each encoded as one MessagePack value, and a binary WebSocket message holds one or more of them back
 * to back (a MessagePack value knows its own length, so no separator is needed). Byte fields (Bytes.ts) travel as
 * MessagePack `bin`.
 *
 * Plain MessagePack only, so that any implementation can speak it: no msgpackr records, no extensions, maps
 * decode as plain objects, and 64-bit integers decode as numbers when they fit (else as bigints, which no frame
 * schema accepts, so they are refused like any other bad value). Browser-safe: msgpackr has a browser build.
 */
import { C1, type Options, Packr } from "msgpackr"

const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  moreTypes: false,
  structuredClone: false,
  encodeUndefinedAsNil: false,
  // msgpackr's runtime accepts "auto" (a number when it is safe, else a bigint); its type declarations lag
  int64AsType: "auto" as NonNullable<Options["int64AsType"]>
})

/** One frame (or any JSON-like value, with Uint8Arrays for bytes) as MessagePack. */
export const encode = (value: unknown): Uint8Array => packr.pack(value)

/**
 * Every value in a binary message, in order. Throws when the bytes are not a sequence of MessagePack values
 * (truncated, or holding the never-used byte 0xc1, which msgpackr would otherwise return as a marker value).
 */
export const decodeAll = (bytes: Uint8Array): ReadonlyArray<unknown> => {
  const values = packr.unpackMultiple(bytes) as Array<unknown>
  if (values.includes(C1) || bytes.length === 0) throw new Error("not MessagePack")
  return values
}
