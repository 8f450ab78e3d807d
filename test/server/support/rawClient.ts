/**
 * A raw WebSocket peer for server tests: speaks frames directly (no tidings client), records every frame the
 * server sends (splitting multi-frame messages), and waits for frames matching a predicate. When the server
 * selected a `.msgpack` subprotocol it sends and reads MessagePack (binary messages) instead of JSON text.
 */
import WebSocket from "ws"
import * as MessagePack from "../../../src/protocol/MessagePack.ts"

export type Frame = { readonly type: string } & Record<string, unknown>

export interface RawClient {
  readonly ws: WebSocket
  readonly frames: Array<Frame>
  /** A frame in the negotiated codec; a string or bytes go out as they are (text or binary). */
  readonly send: (frame: object | string | Uint8Array) => void
  /** The kind of every message received: text (JSON) or binary (MessagePack). */
  readonly kinds: Array<"text" | "binary">
  readonly next: (predicate: (frame: Frame) => boolean, timeoutMs?: number) => Promise<Frame>
  readonly events: (channel?: string) => Array<Frame>
  readonly closed: Promise<{ code: number; reason: string }>
  readonly close: () => void
}

export const connectRaw = (
  url: string,
  options: { protocols?: ReadonlyArray<string>; headers?: Record<string, string> } = {}
): Promise<RawClient> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url, [...(options.protocols ?? ["tidings.chat.v2.json"])], {
      headers: options.headers ?? {}
    })
    const frames: Array<Frame> = []
    const kinds: Array<"text" | "binary"> = []
    const waiters = new Set<{ predicate: (f: Frame) => boolean; resolve: (f: Frame) => void; from: number }>()
    ws.on("message", (data, isBinary) => {
      kinds.push(isBinary ? "binary" : "text")
      const received = isBinary
        ? MessagePack.decodeAll(data as Buffer)
        : data
            .toString()
            .split("\n")
            .map((line) => JSON.parse(line) as unknown)
      for (const value of received) {
        const frame = value as Frame
        frames.push(frame)
        for (const w of waiters) {
          if (w.predicate(frame)) {
            waiters.delete(w)
            w.resolve(frame)
          }
        }
      }
    })
    const closed = new Promise<{ code: number; reason: string }>((res) =>
      ws.on("close", (code, reason) => res({ code, reason: reason.toString() }))
    )
    ws.once("unexpected-response", (_req, res) => {
      let body = ""
      res.on("data", (c: Buffer) => (body += c.toString()))
      res.on("end", () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body })))
    })
    ws.once("error", reject)
    ws.once("open", () =>
      resolve({
        ws,
        frames,
        closed,
        kinds,
        send: (frame) =>
          ws.send(
            typeof frame === "string" || frame instanceof Uint8Array
              ? frame
              : ws.protocol.endsWith(".msgpack")
                ? MessagePack.encode(frame)
                : JSON.stringify(frame)
          ),
        next: (predicate, timeoutMs = 5000) => {
          const found = frames.find(predicate)
          if (found) return Promise.resolve(found)
          return new Promise((res, rej) => {
            const waiter = {
              predicate,
              from: frames.length,
              resolve: (f: Frame) => {
                clearTimeout(timer)
                res(f)
              }
            }
            const timer = setTimeout(() => {
              waiters.delete(waiter)
              rej(new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(frames.slice(-5))}`))
            }, timeoutMs)
            waiters.add(waiter)
          })
        },
        events: (channel) =>
          frames.filter((f) => f.type === "event" && (channel === undefined || f.channel === channel)),
        close: () => ws.close()
      })
    )
  })
