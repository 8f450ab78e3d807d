/**
 * The HTTP side of a WebSocket upgrade: everything decided before the handshake, answered with a real HTTP
 * status — 404 (wrong path), 429 (too many attempts from this IP), 503 (server full or draining), 400 (no
 * common protocol version; the body lists what the server speaks), 401 (a token was given and is invalid).
 */
import type { IncomingMessage } from "node:http"
import type { Socket } from "node:net"
import type { Duplex } from "node:stream"

/** Writes an HTTP error response on a raw upgrade socket and closes it. */
export const refuse = (socket: Duplex, status: number, body: object, headers: Record<string, string> = {}): void => {
  const text = JSON.stringify(body)
  const reason = statusText[status] ?? "Error"
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("")
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n${extra}Connection: close\r\n\r\n${text}`
  )
}

const statusText: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  404: "Not Found",
  429: "Too Many Requests",
  503: "Service Unavailable"
}

/** A token from `Authorization: Bearer …` or the `token` query parameter; the session from `session`. */
export const credentials = (request: IncomingMessage): { token: string | undefined; session: string | undefined } => {
  const url = new URL(request.url ?? "/", "http://localhost")
  const header = request.headers.authorization
  const bearer = header?.startsWith("Bearer ") ? header.slice(7).trim() : undefined
  return {
    token: bearer ?? url.searchParams.get("token") ?? undefined,
    session: url.searchParams.get("session") ?? undefined
  }
}

/**
 * The peer's IP address. Node keeps the address object it read on the socket for the connection's lifetime (about
 * 90 bytes with its strings, against the 2.7 KiB bare ws keeps per connection); the server keeps only the string,
 * so the cached object is let go (Node reads the address again if anything asks for it).
 */
export const peerAddress = (socket: Socket): string => {
  const ip = socket.remoteAddress ?? "unknown"
  ;(socket as unknown as { _peername?: unknown })._peername = undefined
  if (ip === lastAddress) return lastAddress
  lastAddress = ip
  return ip
}

/** The address peerAddress returned last: connections in a row from one address (a proxy, NAT) share one string. */
let lastAddress = ""

export const pathOf = (request: IncomingMessage): string => new URL(request.url ?? "/", "http://localhost").pathname

/**
 * What a plain WebSocket (no subprotocol offered) asks for in its URL: `v` a protocol version (else the server's
 * default), `batch=1` several frames per message, newline-separated (else one frame per message).
 */
export const plainOptions = (
  request: IncomingMessage
): { readonly version: string | null; readonly batch: boolean } => {
  const query = new URL(request.url ?? "/", "http://localhost").searchParams
  const batch = query.get("batch")
  return { version: query.get("v"), batch: batch === "1" || batch === "true" }
}

/** Counts upgrade attempts per IP in one-second windows. */
export class AttemptLimiter {
  private window = 0
  private counts = new Map<string, number>()

  constructor(private readonly perSecond: number) {}

  /** True when this attempt is allowed. */
  allow(ip: string, now: number): boolean {
    const window = Math.floor(now / 1000)
    if (window !== this.window) {
      this.window = window
      this.counts = new Map()
    }
    const count = (this.counts.get(ip) ?? 0) + 1
    this.counts.set(ip, count)
    return count <= this.perSecond
  }
}
