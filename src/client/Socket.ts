/**
 * The seam between the client and a WebSocket implementation: what the client needs from a socket (open with
 * subprotocols, text and binary messages in and out, close with a code) and an adapter for the standard
 * WebSocket API (`globalThis.WebSocket` in browsers, Deno, Bun and Node 22+).
 *
 * The Node adapter over `ws` lives in node.ts, the only client file that may import Node modules. Protocol
 * logic (frames, codecs, auth, heartbeats) is the client's; this file only moves messages: text (JSON) or bytes
 * (MessagePack).
 */

export interface SocketHandlers {
  /** The upgrade succeeded; `protocol` is the subprotocol the server selected. */
  readonly onOpen: (protocol: string) => void
  /** One message: text (JSON) or bytes (MessagePack); either may hold several frames (see EventFrame.ts). */
  readonly onMessage: (data: string | Uint8Array) => void
  /** The socket is gone: closed by either side or failed to connect (1006). Called at most once. */
  readonly onClose: (code: number, reason: string) => void
  /**
   * The server answered the upgrade with a plain HTTP response (`status`, `body`). Only implementations that
   * can see the response call this (ws does; a browser cannot and reports a 1006 close instead). Called
   * instead of `onClose`.
   */
  readonly onRefused: (status: number, body: string) => void
}

export interface Socket {
  /** Sends a text message (a string) or a binary one (bytes). */
  readonly send: (data: string | Uint8Array) => void
  /** Closes with a close frame. The client ignores every callback of this socket afterwards. */
  readonly close: (code: number, reason: string) => void
  /**
   * Drops a connection whose peer stopped answering, without waiting for a close handshake where the
   * implementation allows it (a browser can only `close`). Callbacks are ignored afterwards, as for `close`.
   */
  readonly terminate: (code: number, reason: string) => void
}

/** Opens a socket; must not throw for a refused or failed connection (report it through the handlers). */
export type SocketFactory = (url: string, protocols: ReadonlyArray<string>, handlers: SocketHandlers) => Socket

/** The part of the standard WebSocket constructor the adapter uses. */
export interface WebSocketConstructor {
  new (url: string, protocols?: string | Array<string>): WebSocket
}

/** A socket factory over a standard (WHATWG) WebSocket constructor. */
export const fromWebSocket =
  (Ctor: WebSocketConstructor): SocketFactory =>
  (url, protocols, handlers) => {
    let done = false
    const ws = new Ctor(url, [...protocols])
    // binary messages as ArrayBuffers (read synchronously), not Blobs
    ws.binaryType = "arraybuffer"
    ws.onopen = () => {
      if (!done) handlers.onOpen(ws.protocol)
    }
    ws.onmessage = (event: MessageEvent) => {
      if (done) return
      const data: unknown = event.data
      if (typeof data === "string") handlers.onMessage(data)
      else if (data instanceof ArrayBuffer) handlers.onMessage(new Uint8Array(data))
    }
    ws.onclose = (event: CloseEvent) => {
      if (done) return
      done = true
      handlers.onClose(event.code, event.reason)
    }
    // An error is always followed by a close event, which carries what the client acts on.
    ws.onerror = () => {}
    const close = (code: number, reason: string) => {
      done = true
      try {
        ws.close(code, reason)
      } catch {
        ws.close()
      }
    }
    return {
      send: (data) => {
        if (!done && ws.readyState === 1) ws.send(data)
      },
      close,
      terminate: close
    }
  }

/** The adapter over `globalThis.WebSocket`; throws a helpful error where there is none (Node 20). */
export const global = (): SocketFactory => {
  const Ctor = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
  if (Ctor === undefined) {
    throw new Error(
      "tidings/client: no global WebSocket in this runtime; in Node import the client from tidings/client/node (uses ws)"
    )
  }
  return fromWebSocket(Ctor)
}
