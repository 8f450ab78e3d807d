/**
 * The Redis transport's data layout: key names, and the text forms of an entry in a channel's stream, in a
 * replayed page, in a live announcement and in an idempotency record. Pure string work, no Redis client
 * (Redis.ts owns the connections, scripts.ts the Lua that writes these forms).
 *
 * Keys of one channel share the hash tag `{channel}` so they live in one cluster slot and one script can touch
 * them all. `{`, `}` and `%` in a channel or session name are percent-escaped, so a crafted name can neither
 * move the hash tag nor collide with another channel's keys.
 *
 * - `<prefix>{<channel>}:meta` — hash `{ epoch, top, oldest, segs }` (oldest, segs: see scripts.ts)
 * - `<prefix>{<channel>}:log` — stream, entry id `<offset>-0`, one field: the entry's header, whose value is
 *   the entry's data
 * - `<prefix>{<channel>}:live` — pub/sub channel of announcements
 * - `<prefix>{<channel>}:seg:<epoch>:<k>` — string, segment k of the epoch: the run (below) of offsets
 *   k × SEGMENT_ENTRIES + 1 to (k + 1) × SEGMENT_ENTRIES, as far as they exist, written beside the stream by the
 *   append script, so a read serves a page by concatenating strings instead of Lua tables from XRANGE (scripts.ts)
 * - `<prefix>{<channel>}:idem:<key>` — string, `<expiresAt>\n<announcement of the one entry>`
 * - `<prefix>cursors:{<session>}` — hash channel → `<epoch>:<offset>`, plus the session's expiry time
 *
 * A header, `<storedAt>\n<time>\n<version>\n<event length>\n<data length>\n<event>` (storedAt: storage time,
 * ms), says how long the event and the data that follows it are (UTF-16 code units, which survive the UTF-8
 * round trip through Redis), so `header data header data …` is a run of entries Lua can build by concatenating
 * stream fields as they are, and the client can cut without escaping or per-entry replies. A read returns its
 * epoch, first offset and run as separate reply items; an announcement (and an idempotency record after its
 * expiry line) is `<epoch>\n<first offset>\n<run>`. Offsets in a run are consecutive.
 */
import type { Entry, Publication } from "../Transport.ts"

export interface ChannelKeys {
  readonly meta: string
  readonly stream: string
  /** Prefix of the channel's segment keys; the script appends `<epoch>:<k>`. */
  readonly segments: string
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
  return {
    meta: base + "meta",
    stream: base + "log",
    segments: base + "seg:",
    live: base + "live",
    idempotency: base + "idem:"
  }
}

/** Entries per segment (see the keys above): a page of 1,000 spans 10 or 11 segments. */
export const SEGMENT_ENTRIES = 100

export const cursorKey = (keyPrefix: string, session: string): string => `${keyPrefix}cursors:{${escapeName(session)}}`

/** Field of a session's cursor hash holding the session's logical expiry (a channel name never contains NUL). */
export const cursorExpiryField = "\u0000expiresAt"

/** An entry's header (its stream field); see the top of this file. */
export const encodeHeader = (storedAt: number, publication: Publication): string =>
  `${storedAt}\n${publication.time}\n${publication.version}\n${publication.event.length}\n${publication.data.length}\n${publication.event}`

/**
 * Cuts a run of `header data` pairs from `at` to the end of `text` into entries with offsets from `firstOffset`.
 * Undefined when the text is not in that form.
 */
export const decodeRun = (
  channel: string,
  epoch: string,
  firstOffset: number,
  text: string,
  at = 0
): Array<Entry> | undefined => decodeRange(channel, epoch, firstOffset, text, at, firstOffset, Infinity)?.entries

/**
 * Like decodeRun, but makes entries only for offsets `from` to `from + limit - 1`; the others are only counted
 * (a page read from segments starts at its first segment's first entry and may run past the page). `total`: how
 * many entries the run holds.
 */
export const decodeRange = (
  channel: string,
  epoch: string,
  firstOffset: number,
  text: string,
  at: number,
  from: number,
  limit: number
): { readonly entries: Array<Entry>; readonly total: number } | undefined => {
  const entries: Array<Entry> = []
  let total = 0
  /**
   * The previous entry's event name, reused when the next has the same one (the usual run): a slice per entry
   * would each need hashing again wherever the name is looked up (codec maps, sets).
   */
  let event = ""
  while (at < text.length) {
    // storedAt is for Lua (age trims); skip it.
    const a = text.indexOf("\n", at)
    const b = a < 0 ? -1 : text.indexOf("\n", a + 1)
    const c = b < 0 ? -1 : text.indexOf("\n", b + 1)
    const d = c < 0 ? -1 : text.indexOf("\n", c + 1)
    const e = d < 0 ? -1 : text.indexOf("\n", d + 1)
    if (e < 0) return undefined
    const eventEnd = e + 1 + Number(text.slice(c + 1, d))
    const dataEnd = eventEnd + Number(text.slice(d + 1, e))
    if (!(eventEnd > e && dataEnd >= eventEnd && dataEnd <= text.length)) return undefined
    const offset = firstOffset + total++
    at = dataEnd
    if (offset < from || entries.length >= limit) continue
    const time = Number(text.slice(a + 1, b))
    const version = Number(text.slice(b + 1, c))
    if (!Number.isFinite(time) || !Number.isInteger(version)) return undefined
    if (eventEnd - e - 1 !== event.length || !text.startsWith(event, e + 1)) event = text.slice(e + 1, eventEnd)
    entries.push({ channel, epoch, offset, event, data: text.slice(eventEnd, dataEnd), version, time })
  }
  return { entries, total }
}

/** An announcement, or an idempotency record after its expiry line: `<epoch>\n<first offset>\n<run>`. */
export const decodeAnnouncement = (channel: string, message: string): Array<Entry> | undefined => {
  const a = message.indexOf("\n")
  const b = a < 0 ? -1 : message.indexOf("\n", a + 1)
  if (a <= 0 || b < 0) return undefined
  const firstOffset = Number(message.slice(a + 1, b))
  if (!Number.isSafeInteger(firstOffset) || firstOffset < 1) return undefined
  const entries = decodeRun(channel, message.slice(0, a), firstOffset, message, b + 1)
  return entries !== undefined && entries.length > 0 ? entries : undefined
}

/** A cursor value `<epoch>:<offset>`; epochs are opaque, so split at the last colon. */
export const encodeCursor = (epoch: string, offset: number): string => `${epoch}:${offset}`

export const decodeCursor = (value: string): { readonly epoch: string; readonly offset: number } | undefined => {
  const at = value.lastIndexOf(":")
  if (at <= 0) return undefined
  const offset = Number(value.slice(at + 1))
  return Number.isSafeInteger(offset) && offset >= 0 ? { epoch: value.slice(0, at), offset } : undefined
}
