/**
 * Verifies HS256 JWTs (a shared secret) synchronously with node:crypto, with the same checks and the same
 * answers as jose's `jwtVerify(token, secret, { algorithms: ["HS256"], issuer, audience })`, which test/server/
 * Hs256.test.ts checks token by token. Why not jose here: jose verifies through WebCrypto, 80 µs of CPU per token
 * on the bench machine against 5 µs for node:crypto's HMAC, and connection setup verifies one token per
 * connection. jose still verifies JWKS (asymmetric) tokens and signs tokens in tests and examples.
 *
 * What is checked: three base64url parts; a JSON-object header with `alg` "HS256" and no `crit` (jose accepts
 * `crit: ["b64"]` with `b64: true` only; no issuer sends it, so it is refused here) and no `b64`; parts in
 * unpadded base64url (RFC 7515; a padded part is refused) holding well-formed UTF-8; the signature
 * compared in constant time against the HMAC of `header.payload`; a JSON-object claims set whose `iat`, `nbf`,
 * `exp` are numbers when present, `nbf` ≤ now, `exp` > now (seconds, no tolerance, as jose's default), and `iss`
 * / `aud` equal to the configured issuer / audience when one is set.
 */
import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from "node:crypto"

export type Hs256Failure = "invalid_token" | "expired_token"

export interface Hs256Options {
  readonly issuer?: string | undefined
  readonly audience?: string | undefined
}

/** The claims of a valid token, or why it is refused (with a message in the spirit of jose's). */
export type Hs256Result =
  | { readonly ok: true; readonly payload: Record<string, unknown> }
  | { readonly ok: false; readonly reason: Hs256Failure; readonly message: string }

const BASE64URL = /^[A-Za-z0-9_-]*$/
/** Like jose: a part that is not well-formed UTF-8 is refused, not repaired. */
const utf8 = new TextDecoder("utf-8", { fatal: true })

const refuse = (message: string, reason: Hs256Failure = "invalid_token"): Hs256Result => ({
  ok: false,
  reason,
  message
})

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** A base64url part decoded to a JSON object, or undefined when it is not one. */
const jsonObject = (part: string): Record<string, unknown> | undefined => {
  if (!BASE64URL.test(part)) return undefined
  try {
    const value: unknown = JSON.parse(utf8.decode(Buffer.from(part, "base64url")))
    return isObject(value) ? value : undefined
  } catch {
    return undefined
  }
}

const audienceMatches = (aud: unknown, audience: string): boolean =>
  typeof aud === "string" ? aud === audience : Array.isArray(aud) && aud.includes(audience)

export const verifier = (secret: string, options: Hs256Options = {}): ((token: string) => Hs256Result) => {
  const key: KeyObject = createSecretKey(Buffer.from(secret, "utf8"))
  return (token) => {
    const first = token.indexOf(".")
    const last = token.lastIndexOf(".")
    if (first <= 0 || last === first || token.indexOf(".", first + 1) !== last) return refuse("Invalid Compact JWS")
    const header = jsonObject(token.slice(0, first))
    if (header === undefined) return refuse("JWS Protected Header is invalid")
    if (header.alg !== "HS256") return refuse('"alg" (Algorithm) Header Parameter value not allowed')
    if (header.crit !== undefined || header.b64 !== undefined) return refuse('unsupported "crit" or "b64" header')
    const signature = token.slice(last + 1)
    const expected = createHmac("sha256", key).update(token.slice(0, last)).digest()
    // compared as the ASCII text of its base64url form: any other spelling of the same bytes is refused
    const given = Buffer.from(signature, "latin1")
    const wanted = Buffer.from(expected.toString("base64url"), "latin1")
    if (given.length !== wanted.length || !BASE64URL.test(signature) || !timingSafeEqual(given, wanted)) {
      return refuse("signature verification failed")
    }
    const payload = jsonObject(token.slice(first + 1, last))
    if (payload === undefined) return refuse("JWT Claims Set must be a top-level JSON object")
    if (options.issuer !== undefined && payload.iss !== options.issuer) return refuse('unexpected "iss" claim value')
    if (options.audience !== undefined && !audienceMatches(payload.aud, options.audience)) {
      return refuse('unexpected "aud" claim value')
    }
    const now = Math.floor(Date.now() / 1000)
    for (const claim of ["iat", "nbf", "exp"] as const) {
      if (payload[claim] !== undefined && typeof payload[claim] !== "number") {
        return refuse(`"${claim}" claim must be a number`)
      }
    }
    if (typeof payload.nbf === "number" && payload.nbf > now) return refuse('"nbf" claim timestamp check failed')
    if (typeof payload.exp === "number" && payload.exp <= now) {
      return refuse('"exp" claim timestamp check failed', "expired_token")
    }
    return { ok: true, payload }
  }
}
