/**
 * Version and codec negotiation over the WebSocket subprotocol header.
 *
 * A client offers one or more `tidings.<protocol>.v<N>.<codec>` subprotocols, where the codec is `json` (text
 * frames) or `msgpack` (binary frames, MessagePack). The server picks the highest version it also speaks; among
 * offers of that version, the codec the client listed first (so a client states its preference by order, and
 * can offer `msgpack` with `json` behind it as a fallback for servers that have no MessagePack). No common
 * version refuses the upgrade (HTTP 400) with a body naming what the server supports.
 *
 * Either codec may end in `.compact` (`tidings.<protocol>.v<N>.json.compact`): the compact envelope, where an event
 * frame is an array `[alias, offset, event, data, time]` and the channel's name and epoch travel once, in an `alias`
 * frame, instead of in every event (docs/protocol.md). A server without it ignores the offer, so a client offers
 * the plain form behind it.
 */

/** The wire encodings a connection can negotiate. */
export type Codec = "json" | "msgpack"

/** What this implementation speaks, in the server's order of preference (used only to list what it supports). */
export const CODECS: ReadonlyArray<Codec> = ["json", "msgpack"]

/** The codec of a subprotocol with no choice of codec (older clients, plain WebSockets). */
export const CODEC: Codec = "json"

/** The suffix of a subprotocol that asks for the compact envelope. */
export const COMPACT = "compact"

export const subprotocol = (protocol: string, version: number, codec: Codec = CODEC, compact = false): string =>
  `tidings.${protocol}.v${version}.${codec}${compact ? `.${COMPACT}` : ""}`

const pattern = /^tidings\.([a-z][a-z0-9_-]*)\.v(\d{1,6})\.([a-z0-9]+)(?:\.([a-z0-9]+))?$/

export interface Offer {
  readonly protocol: string
  readonly version: number
  readonly codec: string
  /** The envelope suffix after the codec, if any (`compact` is the one this implementation speaks). */
  readonly envelope: string | undefined
}

export const parseOffer = (value: string): Offer | undefined => {
  const m = pattern.exec(value.trim())
  return m ? { protocol: m[1]!, version: Number(m[2]), codec: m[3]!, envelope: m[4] } : undefined
}

/** Splits a `Sec-WebSocket-Protocol` header into its offers. */
export const parseHeader = (header: string | undefined): ReadonlyArray<string> =>
  header
    ? header
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0)
    : []

/** A version, codec and envelope both sides speak. */
export interface Choice {
  readonly version: number
  readonly codec: Codec
  /** The compact envelope (alias frames and array event frames) instead of self-describing event frames. */
  readonly compact: boolean
}

/**
 * The highest version both sides speak and, for that version, the first codec the client offered that the
 * server speaks; undefined when there is none.
 */
export const negotiate = (
  protocol: string,
  supported: ReadonlyArray<number>,
  offered: ReadonlyArray<string>,
  codecs: ReadonlyArray<Codec> = CODECS,
  /** Whether the compact envelope may be chosen (a server that speaks only self-describing frames says false). */
  compact = true
): Choice | undefined => {
  let best: Choice | undefined
  for (const raw of offered) {
    const offer = parseOffer(raw)
    if (!offer || offer.protocol !== protocol || !supported.includes(offer.version)) continue
    const codec = codecs.find((c) => c === offer.codec)
    if (codec === undefined) continue
    if (offer.envelope !== undefined && (!compact || offer.envelope !== COMPACT)) continue
    // a later offer wins only with a higher version: at equal version the earlier one is the client's preference
    if (best === undefined || offer.version > best.version) {
      best = { version: offer.version, codec, compact: offer.envelope === COMPACT }
    }
  }
  return best
}

/** The highest version both sides speak over JSON, or undefined (servers and tests that speak JSON only). */
export const choose = (
  protocol: string,
  supported: ReadonlyArray<number>,
  offered: ReadonlyArray<string>
): number | undefined => negotiate(protocol, supported, offered, [CODEC], false)?.version
