/**
 * What the load generator needs from a client of any server under test (tidings, bare ws, Socket.IO): connect
 * and be ready to receive (authenticated and subscribed where that applies), drop abruptly, close. Each kind
 * lives in its own file and reports deliveries to the shared Recorder. All of them read messages the same cheap
 * way (no UTF-8 validation, latin1 decoding: the numbers they read are ASCII), so none is favoured. The SSE reader
 * (of the tidings server) reads over node:http instead of WireSocket.
 */
import type { Recorder, StreamState } from "./Recorder.ts"

/** `sse`: a tidings channel read as Server-Sent Events over plain HTTP (SseClient.ts), from the tidings server. */
export type ClientKind = "tidings" | "ws" | "socketio" | "sse"

export interface ClientEnv {
  readonly recorder: Recorder
  /** A socket closed without being asked to (code as the client saw it). */
  readonly unexpectedClose: (code: number) => void
  /** Something the client did not expect (an error frame, a bad message). */
  readonly problem: (what: string) => void
  /** The local address client `index` connects from toward `host` (sourceAddress.ts); none: the kernel picks. */
  readonly sourceAddress?: (index: number, host: string) => string | undefined
}

export interface BenchClient {
  readonly index: number
  readonly stream: StreamState
  readonly isOpen: boolean
  /** Connects (and authenticates); resolves when the server accepted the client (tidings: `welcome`). */
  connect(): Promise<void>
  /** tidings: subscribes to the client's channel; resolves at `subscribed`. Others receive without subscribing. */
  subscribe?(): Promise<void>
  /** Cuts the connection without a close handshake (a network drop). */
  terminate(): void
  close(): void
}

/** Rejects after `ms` with a message naming what did not happen. */
export const within = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)
    promise.then(
      (v) => {
        clearTimeout(timer)
        resolve(v)
      },
      (e) => {
        clearTimeout(timer)
        reject(e)
      }
    )
  })
