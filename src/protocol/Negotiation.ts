/**
 * Version negotiation over the WebSocket subprotocol header.
 *
 * A client offers one or more `tidings.<protocol>.v<N>.json` subprotocols; the server picks the highest version
 * it also speaks. No common version refuses the upgrade (HTTP 400) with a body naming what the server supports.
 */

export const CODEC = "json"

export const subprotocol = (protocol: string, version: number): string => `tidings.${protocol}.v${version}.${CODEC}`

const pattern = /^tidings\.([a-z][a-z0-9_-]*)\.v(\d{1,6})\.([a-z0-9]+)$/

export interface Offer {
  readonly protocol: string
  readonly version: number
  readonly codec: string
}

export const parseOffer = (value: string): Offer | undefined => {
  const m = pattern.exec(value.trim())
  return m ? { protocol: m[1]!, version: Number(m[2]), codec: m[3]! } : undefined
}

/** Splits a `Sec-WebSocket-Protocol` header into its offers. */
export const parseHeader = (header: string | undefined): ReadonlyArray<string> =>
  header
    ? header
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0)
    : []

/** The highest version both sides speak, or undefined. */
export const choose = (
  protocol: string,
  supported: ReadonlyArray<number>,
  offered: ReadonlyArray<string>
): number | undefined => {
  let best: number | undefined
  for (const raw of offered) {
    const offer = parseOffer(raw)
    if (offer && offer.protocol === protocol && offer.codec === CODEC && supported.includes(offer.version)) {
      if (best === undefined || offer.version > best) best = offer.version
    }
  }
  return best
}
