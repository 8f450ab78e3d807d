/**
 * The Redis transport's data layout: key names, and the text forms of an entry in a channel's stream, in a live
 * announcement and in an idempotency record. Pure string work, no Redis client (Redis.ts owns the connections,
 * scripts.ts the Lua that writes these forms).
 *
 * Keys of one channel share the hash tag `{channel}` so they live in one cluster slot and one script can touch
 * them all. `{`, `}` and `%` in a channel or session name are percent-escaped, so a crafted name can neither
 * move the hash tag nor collide with another channel's keys.
 *
 * - `<prefix>{<channel>}:meta` — hash `{ epoch, top }`
 * - `<prefix>{<channel>}:log` — stream, entry id `<offset>-0`, fields `s` (storage time, ms) and `b` (body)
 * - `<prefix>{<channel>}:live` — pub/sub channel of announcements
 * - `<prefix>{<channel>}:idem:<key>` — string, `<expiresAt>\n<announcement>`
 * - `<prefix>cursors:{<session>}` — hash channel → `<epoch>:<offset>`, plus the session's expiry time
 */
import type { Entry, Publication } from "../Transport.ts"

export interface ChannelKeys {
  readonly meta: string
  readonly stream: string
  /** The pub/sub channel announcing the channel's new entries. */
  readonly live: string
  /** Prefix of the channel's idempotency records; append the key. */
  readonly idempotency: string
}

const needsEscape = /[%{}]/

/** Escapes the characters that would change a key's hash tag or let two names share a key. */
export const escapeName = (name: string): string =>
  needsEscape.test(name) ? name.replace(/%/g, "%25").replace(/\{/g, "%7B").replace(/\}/g, "%7D") : name

const escapes: Record<string, string> = { "%25": "%", "%7B": "{", "%7D": "}" }

export const unescapeName = (escaped: string): string =>
  escaped.includes("%") ? escaped.replace(/%(25|7B|7D)/g, (match) => escapes[match]!) : escaped

export const channelKeys = (keyPrefix: string, channel: string): ChannelKeys => {
  const base = `${keyPrefix}{${escapeName(channel)}}:`
  return { meta: base + "meta", stream: base + "log", live: base + "live", idempotency: base + "idem:" }
}

export const cursorKey = (keyPrefix: string, session: string): string => `${keyPrefix}cursors:{${escapeName(session)}}`

/** Field of a session's cursor hash holding the session's logical expiry (a channel name never contains NUL). */
export const cursorExpiryField = "\u0000expiresAt"

/**
 * An entry's body: `<time>\n<version>\n<event length>\n<event><data>`. The event is length-prefixed (UTF-16 code
 * units, which survive the UTF-8 round trip through Redis) so neither it nor the data needs escaping or parsing.
 */
export const encodeBody = (publication: Publication): string =>
  `${publication.time}\n${publication.version}\n${publication.event.length}\n${publication.event}${publication.data}`

/** Decodes a body; undefined when it is not in the form `encodeBody` writes. */
export const decodeBody = (
  channel: string,
  epoch: string,
  offset: number,
  body: string,
  start = 0
): Entry | undefined => {
  const a = body.indexOf("\n", start)
  const b = a < 0 ? -1 : body.indexOf("\n", a + 1)
  const c = b < 0 ? -1 : body.indexOf("\n", b + 1)
  if (c < 0) return undefined
  const time = Number(body.slice(start, a))
  const version = Number(body.slice(a + 1, b))
  const eventLength = Number(body.slice(b + 1, c))
  if (!Number.isFinite(time) || !Number.isInteger(version) || !Number.isInteger(eventLength)) return undefined
  const eventEnd = c + 1 + eventLength
  if (eventEnd > body.length) return undefined
  return { channel, epoch, offset, event: body.slice(c + 1, eventEnd), data: body.slice(eventEnd), version, time }
}

/** An announcement (the PUBLISH payload, also the idempotency record's value): `<epoch>\n<offset>\n<body>`. */
export const decodeAnnouncement = (channel: string, message: string): Entry | undefined => {
  const a = message.indexOf("\n")
  const b = a < 0 ? -1 : message.indexOf("\n", a + 1)
  if (b < 0) return undefined
  const offset = Number(message.slice(a + 1, b))
  if (!Number.isSafeInteger(offset) || offset < 1) return undefined
  return decodeBody(channel, message.slice(0, a), offset, message, b + 1)
}

export const encodeAnnouncement = (epoch: string, offset: number, body: string): string =>
  `${epoch}\n${offset}\n${body}`

/** The offset of a stream id `<offset>-0`. */
export const offsetOfId = (id: string): number => Number.parseInt(id, 10)

/** A cursor value `<epoch>:<offset>`; epochs are opaque, so split at the last colon. */
export const encodeCursor = (epoch: string, offset: number): string => `${epoch}:${offset}`

export const decodeCursor = (value: string): { readonly epoch: string; readonly offset: number } | undefined => {
  const at = value.lastIndexOf(":")
  if (at <= 0) return undefined
  const offset = Number(value.slice(at + 1))
  return Number.isSafeInteger(offset) && offset >= 0 ? { epoch: value.slice(0, at), offset } : undefined
}
