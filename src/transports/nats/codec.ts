/**
 * How a channel log maps onto JetStream: a channel name becomes one subject token, and an entry becomes one
 * message whose headers carry its position and metadata and whose body is the publication's JSON text.
 *
 * Decoding comes in two forms: from nats.js's parsed headers (lookups), and straight from a delivered message's
 * bytes (replay, where nats.js's header parsing would cost more than everything else per entry; that decoder
 * keeps a little scratch state between calls, never across an await).
 *
 * No I/O. Channel names may hold any character ("chat:1", "a.b", "*", ">", spaces), none of
 * which can appear raw in a subject token, so a name is encoded as unpadded base64url of its UTF-8 bytes; "=" (which
 * base64url never emits) marks the two cases UTF-8 cannot carry losslessly: the empty name ("=") and a name with
 * lone surrogates ("=" + the hex of its UTF-16 code units). The same tokens are valid NATS KV keys.
 */
import { type Msg, type MsgHdrs, MsgImpl } from "@nats-io/transport-node"
import type { Entry, Publication } from "../Transport.ts"
import { fastHeaders, headerValue } from "./Publisher.ts"

/** Header names; every message on a channel subject carries all of them. */
export const Header = {
  epoch: "Tidings-Epoch",
  /** The entry's channel offset; "0" marks an epoch marker (an empty channel whose epoch was created by `top`). */
  offset: "Tidings-Offset",
  /** URI-encoded, so any event name is a valid header value. */
  event: "Tidings-Event",
  version: "Tidings-Version",
  /** The publication's time (publisher's Clock). */
  time: "Tidings-Time",
  /** When the transport stored it (the appending node's Clock), which age retention compares against. */
  storedAt: "Tidings-Stored-At"
} as const

const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** The subject token of a channel name (reversible, see the file comment). */
export const channelToken = (channel: string): string => {
  if (channel.length === 0) return "="
  if (!loneSurrogate.test(channel)) return Buffer.from(channel, "utf8").toString("base64url")
  let hex = "="
  for (let i = 0; i < channel.length; i++) hex += channel.charCodeAt(i).toString(16).padStart(4, "0")
  return hex
}

/** Inverse of `channelToken`. */
export const tokenChannel = (token: string): string => {
  if (!token.startsWith("=")) return Buffer.from(token, "base64url").toString("utf8")
  let channel = ""
  for (let i = 1; i + 4 <= token.length; i += 4)
    channel += String.fromCharCode(Number.parseInt(token.slice(i, i + 4), 16))
  return channel
}

/** What one stored message says about its channel log. */
export interface Stored {
  /** Stream sequence of the message; 0 when it came through a consumer (`decodeDelivered`), where none needs it. */
  readonly seq: number
  readonly epoch: string
  /** 0 for an epoch marker. */
  readonly offset: number
  readonly storedAt: number
  /** The entry; undefined for an epoch marker. */
  readonly entry: Entry | undefined
}

// A leading U+FEFF is data like any other character (the default decoder would drop it).
const textDecoder = new TextDecoder("utf-8", { ignoreBOM: true })
const textEncoder = new TextEncoder()

export const encodeBody = (publication: Publication): Uint8Array => textEncoder.encode(publication.data)

/** Nats-Expected-Last-Subject-Sequence: the publish is refused unless the subject's newest message is this one. */
const expectHeader = "Nats-Expected-Last-Subject-Sequence"
/** Nats-Msg-Id: the stream de-duplicates publishes with the same id within its duplicate window. */
const msgIdHeader = "Nats-Msg-Id"

/** Headers of an entry appended after the subject's message `expectedSeq` (0: the subject must be empty). */
export const entryHeaders = (
  epoch: string,
  offset: number,
  publication: Publication,
  storedAt: number,
  expectedSeq: number,
  msgId: string | undefined
): MsgHdrs => {
  const values: Array<readonly [string, string]> = [
    [Header.epoch, epoch],
    [Header.offset, String(offset)],
    [Header.event, encodeURIComponent(publication.event)],
    [Header.version, String(publication.version)],
    [Header.time, String(publication.time)],
    [Header.storedAt, String(storedAt)],
    [expectHeader, String(expectedSeq)]
  ]
  if (msgId !== undefined) values.push([msgIdHeader, msgId])
  return fastHeaders(values)
}

/** Headers of the marker that creates an empty channel's epoch (only if the subject is still empty). */
export const markerHeaders = (epoch: string, storedAt: number): MsgHdrs =>
  fastHeaders([
    [Header.epoch, epoch],
    [Header.offset, "0"],
    [Header.storedAt, String(storedAt)],
    [expectHeader, "0"]
  ])

/** The Nats-Msg-Id of an idempotency key: scoped to its channel, and a valid header value whatever the key. */
export const msgIdOf = (channel: string, idempotencyKey: string): string =>
  `${channelToken(channel)}:${encodeURIComponent(idempotencyKey)}`

/**
 * Decodes a message of `channel`'s subject; undefined when it was not written by this transport (no or broken
 * position headers), which callers treat as a foreign message.
 */
export const decode = (
  channel: string,
  seq: number,
  headers: MsgHdrs | undefined,
  data: Uint8Array
): Stored | undefined => {
  if (headers === undefined) return undefined
  return build(
    channel,
    seq,
    headerValue(headers, Header.epoch),
    headerValue(headers, Header.offset),
    headerValue(headers, Header.storedAt),
    headerValue(headers, Header.event),
    headerValue(headers, Header.version),
    headerValue(headers, Header.time),
    textDecoder.decode(data)
  )
}

/**
 * `decode` for a message a consumer delivered, read straight from its bytes: nats.js's header parser (a string,
 * a line split and a map per message) and its reply-subject parsing cost several microseconds per message on
 * replay, more than everything else the transport does with it. The stream sequence is not needed there (it is
 * 0). Undefined for a foreign message and for a status message (no reply subject).
 */
export const decodeDelivered = (channel: string, message: Msg): Stored | undefined => {
  if (!(message instanceof MsgImpl)) {
    return message.reply ? decode(channel, 0, message.headers, message.data) : undefined
  }
  const headerLength = message._msg.hdr
  if (headerLength <= 0) return undefined
  const bytes = message._rdata
  const base = bytes.byteOffset
  // Messages read from one socket chunk share its memory: one Buffer view over it serves them all.
  if (chunk.buffer !== bytes.buffer) chunk = Buffer.from(bytes.buffer)
  // A status message's header block starts "NATS/1.0 404 …", so it never takes the fast path.
  if (!scanWritten(chunk, base, base + headerLength)) {
    if (message._msg.reply === undefined || !scanHeaders(chunk, base, base + headerLength)) return undefined
  }
  return build(
    channel,
    0,
    epochs.read(chunk),
    numberAt(chunk, 1),
    numberAt(chunk, 5),
    events.read(chunk),
    numberAt(chunk, 3),
    numberAt(chunk, 4),
    chunk.toString("utf8", base + headerLength, base + bytes.byteLength)
  )
}

/** A view of the memory holding the last message decoded (see `decodeDelivered`). */
let chunk: Buffer = Buffer.alloc(0)

/** The headers `decodeDelivered` reads, in the order of `found` and of `entryHeaders`; all start with `prefix`. */
const scannedNames = [Header.epoch, Header.offset, Header.event, Header.version, Header.time, Header.storedAt]
const ascii = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0))
const scanned = scannedNames.map(ascii)
const prefix = scanned[0]!.subarray(0, "Tidings-".length)
/** Where the value of each scanned header starts and ends in the last block scanned (both 0 when absent). */
const found = new Int32Array(2 * scanned.length)
const cr = 13
const colon = 58
const space = 32

/**
 * Finds the scanned headers' values in the header block ("NATS/1.0\r\nKey: value\r\n…\r\n\r\n") from `from`
 * to `end` of `bytes`, as nats.js would read them: the first value of each exact key, without surrounding
 * spaces. False when the block has no line break.
 */
const scanHeaders = (bytes: Uint8Array, from: number, end: number): boolean => {
  found.fill(0)
  let line = from
  while (line < end && bytes[line] !== cr) line++
  line += 2
  if (line > end) return false
  while (line < end) {
    let lineEnd = line
    while (lineEnd < end && bytes[lineEnd] !== cr) lineEnd++
    if (startsWith(bytes, line, lineEnd, prefix)) {
      let separator = line + prefix.length
      while (separator < lineEnd && bytes[separator] !== colon) separator++
      for (let key = 0; key < scanned.length; key++) {
        if (!startsWith(bytes, line, separator, scanned[key]!) || separator - line !== scanned[key]!.length) continue
        if (found[2 * key + 1] !== 0) break
        let start = separator + 1
        let stop = lineEnd
        while (start < stop && bytes[start] === space) start++
        while (stop > start && bytes[stop - 1] === space) stop--
        found[2 * key] = start
        found[2 * key + 1] = stop
        break
      }
    }
    line = lineEnd + 2
  }
  return true
}

/** "NATS/1.0\r\n" and each scanned header's "Key: " as `entryHeaders` writes them (`scanned`'s order). */
const statusLine = ascii("NATS/1.0\r\n")
const writtenKeys = scannedNames.map((key) => ascii(`${key}: `))

/**
 * The fast path of `scanHeaders`: the block as `entryHeaders` writes it (the status line, then the six headers
 * in their order, each value up to its CR), read in one pass without looking at the rest of the block. False
 * when the block is laid out in any other way; `scanHeaders` then reads it whatever its order. A JetStream
 * delivery keeps a message's headers as they were published, so every entry this transport wrote takes it.
 */
const scanWritten = (bytes: Uint8Array, from: number, end: number): boolean => {
  if (!matches(bytes, from, end, statusLine, statusWords)) return false
  let at = from + statusLine.length
  for (let key = 0; key < writtenKeys.length; key++) {
    const name = writtenKeys[key]!
    if (!matches(bytes, at, end, name, writtenWords[key]!)) return false
    const start = at + name.length
    let stop = start
    while (stop < end && bytes[stop] !== cr) stop++
    if (stop >= end || stop === start || bytes[stop - 1] === space || bytes[start] === space) return false
    found[2 * key] = start
    found[2 * key + 1] = stop
    at = stop + 2
  }
  return true
}

/** The four bytes of `bytes` at `i` as one little-endian number. */
const wordAt = (bytes: Uint8Array, i: number): number =>
  bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)

const wordsOf = (key: Uint8Array): Int32Array => {
  const words = new Int32Array(key.length >> 2)
  for (let i = 0; i < words.length; i++) words[i] = wordAt(key, 4 * i)
  return words
}
const statusWords = wordsOf(statusLine)
const writtenWords = writtenKeys.map(wordsOf)

/** `startsWith(bytes, start, end, key)` four bytes at a time (`words`: `key`'s whole words, from `wordAt`). */
const matches = (bytes: Uint8Array, start: number, end: number, key: Uint8Array, words: Int32Array): boolean => {
  if (end - start < key.length) return false
  for (let w = 0; w < words.length; w++) if (wordAt(bytes, start + 4 * w) !== words[w]) return false
  for (let i = 4 * words.length; i < key.length; i++) if (bytes[start + i] !== key[i]) return false
  return true
}

/** Whether `bytes` from `start` (and before `end`) begin with `key`. */
const startsWith = (bytes: Uint8Array, start: number, end: number, key: Uint8Array): boolean => {
  if (end - start < key.length) return false
  for (let i = 0; i < key.length; i++) if (bytes[start + i] !== key[i]) return false
  return true
}

/**
 * The text of one scanned header, reusing the previous one when its bytes are the same: the messages of a replay
 * share their epoch and mostly their event name, so most reads allocate nothing.
 */
class Recent {
  private text = ""
  private bytes = new Uint8Array(0)

  constructor(private readonly field: number) {}

  read(buffer: Buffer): string {
    const start = found[2 * this.field]!
    const end = found[2 * this.field + 1]!
    if (end - start !== this.bytes.length || !startsWith(buffer, start, end, this.bytes)) {
      this.text = buffer.toString("latin1", start, end)
      this.bytes = Uint8Array.from(buffer.subarray(start, end))
    }
    return this.text
  }
}

const epochs = new Recent(0)
const events = new Recent(2)

/** The scanned header `field` as text for `Number`: its digits read in place when it is a plain integer. */
const numberAt = (buffer: Buffer, field: number): string | number => {
  const start = found[2 * field]!
  const end = found[2 * field + 1]!
  let value = 0
  for (let i = start; i < end; i++) {
    const digit = buffer[i]! - zero
    if (digit < 0 || digit > 9 || i - start > 14) return buffer.toString("latin1", start, end)
    value = value * 10 + digit
  }
  return value
}

const zero = 48

/**
 * A message from its header values (numbers as text, or already read); undefined when its position is missing or
 * broken. `event` is still URI-encoded.
 */
const build = (
  channel: string,
  seq: number,
  epoch: string,
  offsetValue: string | number,
  storedAt: string | number,
  event: string,
  version: string | number,
  time: string | number,
  data: string
): Stored | undefined => {
  const offset = Number(offsetValue)
  if (epoch.length === 0 || !Number.isSafeInteger(offset) || offset < 0) return undefined
  if (offset === 0) return { seq, epoch, offset, storedAt: Number(storedAt), entry: undefined }
  const entry: Entry = {
    channel,
    epoch,
    offset,
    // Most event names need no decoding: skip the call for them.
    event: event.includes("%") ? decodeURIComponent(event) : event,
    data,
    version: Number(version),
    time: Number(time)
  }
  return { seq, epoch, offset, storedAt: Number(storedAt), entry }
}
