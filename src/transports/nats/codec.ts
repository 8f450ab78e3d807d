/**
 * How a channel log maps onto JetStream: a channel name becomes one subject token, and an entry becomes one
 * message whose headers carry its position and metadata and whose body is the publication's JSON text.
 *
 * Pure functions, no I/O. Channel names may hold any character ("chat:1", "a.b", "*", ">", spaces), none of
 * which can appear raw in a subject token, so a name is encoded as unpadded base64url of its UTF-8 bytes; "=" (which
 * base64url never emits) marks the two cases UTF-8 cannot carry losslessly: the empty name ("=") and a name with
 * lone surrogates ("=" + the hex of its UTF-16 code units). The same tokens are valid NATS KV keys.
 */
import type { MsgHdrs } from "@nats-io/transport-node"
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
  /** Stream sequence of the message. */
  readonly seq: number
  readonly epoch: string
  /** 0 for an epoch marker. */
  readonly offset: number
  readonly storedAt: number
  /** The entry; undefined for an epoch marker. */
  readonly entry: Entry | undefined
}

const textDecoder = new TextDecoder()
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
  const epoch = headerValue(headers, Header.epoch)
  const offset = Number(headerValue(headers, Header.offset))
  const storedAt = Number(headerValue(headers, Header.storedAt))
  if (epoch.length === 0 || !Number.isSafeInteger(offset) || offset < 0) return undefined
  if (offset === 0) return { seq, epoch, offset, storedAt, entry: undefined }
  const entry: Entry = {
    channel,
    epoch,
    offset,
    event: decodeURIComponent(headerValue(headers, Header.event)),
    data: textDecoder.decode(data),
    version: Number(headerValue(headers, Header.version)),
    time: Number(headerValue(headers, Header.time))
  }
  return { seq, epoch, offset, storedAt, entry }
}
