/**
 * The tidings wire protocol for k6 scripts (k6 ≥ 1.0 runs TypeScript directly): an HS256 JWT signed in the
 * script, the connection (subprotocol `tidings.bench.v1.json` and `Authorization: Bearer` at the upgrade),
 * newline-batched messages split into frames, and the frames the scripts send. Shared by fanout.ts and
 * command-rtt.ts; nothing here is Node code.
 */
import crypto from "k6/crypto"
import encoding from "k6/encoding"
import { WebSocket } from "k6/websockets"

export const subprotocol = "tidings.bench.v1.json"

export interface Frame {
  readonly type: string
  readonly [key: string]: unknown
}

/** The same default secret as bench/server.ts (override with TIDINGS_SECRET). */
export const secret = (): string => __ENV.TIDINGS_SECRET ?? "tidings-bench-secret-not-for-production-0123456789"

export const url = (): string => __ENV.TIDINGS_URL ?? "ws://127.0.0.1:4000/ws"

/** An HS256 JWT for `sub` that may read `bench:*` (and its personal channel). */
export const sign = (sub: string): string => {
  const header = encoding.b64encode(JSON.stringify({ alg: "HS256", typ: "JWT" }), "rawurl")
  const claims = encoding.b64encode(
    JSON.stringify({ sub, channels: ["bench:*"], iat: Math.floor(Date.now() / 1000) }),
    "rawurl"
  )
  const signature = crypto.hmac("sha256", secret(), `${header}.${claims}`, "base64rawurl")
  return `${header}.${claims}.${signature}`
}

/** Opens a tidings connection authenticated at the upgrade. */
export const connect = (sub: string): WebSocket =>
  new WebSocket(url(), null, {
    headers: { "Sec-WebSocket-Protocol": subprotocol, Authorization: `Bearer ${sign(sub)}` }
  })

/** One WebSocket message holds one or more frames separated by newlines. */
export const frames = (data: unknown): Array<Frame> =>
  typeof data === "string" ? data.split("\n").map((line) => JSON.parse(line) as Frame) : []

export const subscribe = (channel: string): string => JSON.stringify({ type: "subscribe", channel })

export const ack = (channel: string, epoch: string, offset: number): string =>
  JSON.stringify({ type: "ack", channel, epoch, offset })

export const command = (id: string, name: string, payload: unknown): string =>
  JSON.stringify({ type: "command", id, name, payload })

export const pong = (): string => JSON.stringify({ type: "pong" })
