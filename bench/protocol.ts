/**
 * The bench's own tidings protocol and the shape of its event data, shared by every server under test (tidings
 * and the baselines) and the load generator.
 *
 * An event's data carries what the load generator needs to measure honestly: `s` the step it belongs to, `i` its
 * index in the recipient's stream for that step (contiguous, so gaps and duplicates show), `t` its SCHEDULED
 * publish time in ms since the Unix epoch with sub-ms precision (latency = receipt − t, so a stalled publisher or
 * server cannot hide its stall: coordinated omission corrected), `m` 1 when it is inside the measured window
 * (after warm-up), and `p` padding to the requested size. Field order is fixed, so the load generator can scan
 * the numbers without a JSON.parse per delivery (loadgen/scan.ts). It owns no transport or socket code.
 */
import { Schema } from "effect"
import { SignJWT } from "jose"
import * as Protocol from "../src/protocol/Protocol.ts"

export const Tick = Schema.Struct({ s: Schema.Int, i: Schema.Int, t: Schema.Number, m: Schema.Int, p: Schema.String })
export type Tick = typeof Tick.Type

const Echo = Schema.Struct({ t: Schema.Number, p: Schema.String })

export const BenchProtocol = Protocol.make(
  "bench",
  Protocol.version({
    version: 1,
    events: { tick: Tick },
    commands: {
      echo: Protocol.command({
        payload: Echo,
        result: Echo,
        error: Schema.Struct({ _tag: Schema.tag("Refused"), reason: Schema.String })
      })
    }
  })
)

/** The WebSocket subprotocol a bench client offers. */
export const benchSubprotocol = "tidings.bench.v1.json"

/** The HS256 secret the bench server and load generator share (loopback only; not a real secret). */
export const benchSecret = "tidings-bench-secret-not-for-production-0123456789"

const benchKey = new TextEncoder().encode(benchSecret)

/**
 * A bench client's token: its user, read rights on every bench channel, and an expiry an hour away, as production
 * tokens have one (a server may keep per-connection state for it: that belongs in the memory figure).
 */
export const benchToken = (user: string): Promise<string> =>
  new SignJWT({ sub: user, channels: ["bench:*"] })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("1h")
    .sign(benchKey)

/** The API key of the bench server's HTTP publish endpoint. */
export const benchApiKey = "tidings-bench-api-key"

/** Channel names: every bench client may read `bench:*` and its personal channel `user:<sub>`. */
export const fanoutChannel = "bench:fanout"
export const userOf = (index: number): string => `u${index}`
export const personalChannelOf = (index: number): string => `user:${userOf(index)}`

/** Wall-clock milliseconds with sub-ms precision, comparable across processes of one machine. */
export const nowMs = (): number => performance.timeOrigin + performance.now()

const padCache = new Map<number, string>()

/** Padding so that the JSON of a Tick is about `bytes` long (the fixed fields take about 50). */
export const padFor = (bytes: number): string => {
  const length = Math.max(0, bytes - 50)
  let pad = padCache.get(length)
  if (pad === undefined) {
    pad = "x".repeat(length)
    padCache.set(length, pad)
  }
  return pad
}

export const tick = (s: number, i: number, t: number, measured: boolean, pad: string): Tick => ({
  s,
  i,
  t,
  m: measured ? 1 : 0,
  p: pad
})
