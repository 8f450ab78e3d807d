/**
 * The signature of a forwarded command (CommandForwarding.ts): what the gateway puts on each POST and what an
 * endpoint checks before trusting it. The gateway sends `x-tidings-timestamp: <ms since epoch>` and
 * `x-tidings-signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>">`, keyed with the shared secret. `verify`
 * refuses a signature that does not match (tampered body, wrong secret), a timestamp outside the tolerance
 * window (an old request played again), and — with a ReplayCache — the same signed request seen twice inside
 * that window. Plain functions: an endpoint needs neither Effect nor the rest of tidings.
 */
import { createHmac, timingSafeEqual } from "node:crypto"

export const TIMESTAMP_HEADER = "x-tidings-timestamp"
export const SIGNATURE_HEADER = "x-tidings-signature"

/** How far a timestamp may be from the verifier's clock, either way, by default: five minutes. */
export const DEFAULT_TOLERANCE_MS = 300_000

const PREFIX = "v1="

type Body = string | Uint8Array

const hmac = (secret: string, timestamp: string, body: Body): Buffer =>
  createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest()

/** The `x-tidings-signature` value for a body sent at `timestamp` (ms): `v1=<hex>`. */
export const sign = (secret: string, timestamp: number | string, body: Body): string =>
  `${PREFIX}${hmac(secret, String(timestamp), body).toString("hex")}`

/** Both headers for a body sent now (or at `now`). */
export const headers = (secret: string, body: Body, now: number = Date.now()): Record<string, string> => {
  const timestamp = String(Math.floor(now))
  return { [TIMESTAMP_HEADER]: timestamp, [SIGNATURE_HEADER]: sign(secret, timestamp, body) }
}

/**
 * Signatures already accepted, so that the same signed request is refused the second time. Bounded: an entry is
 * forgotten once its timestamp has left the tolerance window (`verify` refuses it as stale from then on), and
 * beyond `maxEntries` the oldest entry goes first — size it above the number of requests one window can bring.
 * One cache per process: endpoints behind a load balancer that must refuse a replay sent to another instance
 * need a shared store (keep each accepted signature until its timestamp + tolerance).
 */
export class ReplayCache {
  /** Signature → when it may be forgotten (ms), in insertion order. */
  private readonly seen = new Map<string, number>()

  constructor(readonly maxEntries = 100_000) {
    if (!(maxEntries >= 1)) throw new Error(`ReplayCache maxEntries must be at least 1, got ${maxEntries}`)
  }

  get size(): number {
    return this.seen.size
  }

  /** Whether `signature` was remembered before; remembers it until `forgetAt` either way. */
  remember(signature: string, forgetAt: number, now: number): boolean {
    this.prune(now)
    if (this.seen.has(signature)) return true
    this.seen.set(signature, forgetAt)
    if (this.seen.size > this.maxEntries) this.seen.delete(this.seen.keys().next().value!)
    return false
  }

  /** Drops expired entries from the front (entries arrive in roughly increasing expiry order). */
  private prune(now: number): void {
    for (const [signature, forgetAt] of this.seen) {
      if (forgetAt > now) return
      this.seen.delete(signature)
    }
  }
}

export interface VerifyOptions {
  /** How far the timestamp may be from `now`, either way (default 300 000 ms). */
  readonly toleranceMs?: number
  /** The verifier's clock, ms since epoch (default Date.now()). */
  readonly now?: number
  /** Remembers accepted signatures to refuse an exact replay inside the window. */
  readonly replay?: ReplayCache
}

/** The request as received: header values as node:http gives them, and the raw body bytes or text. */
export interface SignedRequest {
  readonly timestamp: string | ReadonlyArray<string> | undefined | null
  readonly signature: string | ReadonlyArray<string> | undefined | null
  readonly body: Body
}

export type VerifyResult =
  | { readonly ok: true; readonly timestamp: number }
  | {
      readonly ok: false
      /** `malformed`: a header missing or unreadable; `stale`: outside the window; `replayed`: seen before. */
      readonly reason: "malformed" | "bad_signature" | "stale" | "replayed"
      readonly message: string
    }

const single = (value: string | ReadonlyArray<string> | undefined | null): string | undefined =>
  typeof value === "string" ? value : value?.length === 1 ? value[0] : undefined

const refuse = (reason: Exclude<VerifyResult, { ok: true }>["reason"], message: string): VerifyResult => ({
  ok: false,
  reason,
  message
})

/**
 * Checks a forwarded request. Verify the raw body, before parsing it: the signature covers its exact bytes.
 * `secret` may be several secrets while one is being rotated; any of them may have signed. The signature header
 * may carry several comma-separated `v1=` entries; one matching is enough.
 */
export const verify = (
  secret: string | ReadonlyArray<string>,
  request: SignedRequest,
  options: VerifyOptions = {}
): VerifyResult => {
  const timestamp = single(request.timestamp)
  const header = single(request.signature)
  if (timestamp === undefined || !/^\d{1,16}$/.test(timestamp)) {
    return refuse("malformed", `${TIMESTAMP_HEADER} is missing or not a number of milliseconds`)
  }
  const given = (header ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry.startsWith(PREFIX) && /^[0-9a-f]{64}$/i.test(entry.slice(PREFIX.length)))
    .map((entry) => Buffer.from(entry.slice(PREFIX.length), "hex"))
  if (given.length === 0) return refuse("malformed", `${SIGNATURE_HEADER} has no v1=<64 hex digits> entry`)
  const secrets = typeof secret === "string" ? [secret] : secret
  let matched: Buffer | undefined
  for (const s of secrets) {
    const expected = hmac(s, timestamp, request.body)
    // every entry is compared, so the time taken does not say which one matched
    if (given.reduce((found, g) => timingSafeEqual(g, expected) || found, false)) matched ??= expected
  }
  if (matched === undefined) return refuse("bad_signature", "the signature does not match the body and timestamp")
  // the timestamp is checked after the signature: only a signed timestamp says anything about the request
  const now = options.now ?? Date.now()
  const tolerance = options.toleranceMs ?? DEFAULT_TOLERANCE_MS
  const at = Number(timestamp)
  if (Math.abs(now - at) > tolerance) {
    return refuse("stale", `the timestamp is ${now - at} ms from now, outside the ${tolerance} ms window`)
  }
  // keyed by the signature computed here, not the header as sent: extra or reordered entries are the same request
  if (options.replay?.remember(matched.toString("hex"), at + tolerance, now)) {
    return refuse("replayed", "this signed request was already accepted")
  }
  return { ok: true, timestamp: at }
}
