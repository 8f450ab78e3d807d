/**
 * The Node client entry: the same surface as index.ts, with `ws` as the WebSocket implementation. It is the
 * only client file that imports Node code. `ws` also lets the client read an HTTP refusal of the upgrade
 * (a 400 naming the supported versions becomes ProtocolMismatch), which a browser cannot.
 */
import WebSocket from "ws"
import * as Client from "./Client.ts"
import * as ClientEffect from "./ClientEffect.ts"
import type { SocketFactory } from "./Socket.ts"

export * from "./index.ts"

/** Largest HTTP refusal body read, so a misbehaving server cannot make the client buffer without bound. */
const MAX_REFUSAL_BODY = 16_384

/** A socket factory over `ws`. Options such as headers or an agent go to the `ws` constructor. */
export const wsSocket =
  (options: WebSocket.ClientOptions = {}): SocketFactory =>
  (url, protocols, handlers) => {
    let done = false
    const finish = () => {
      const first = !done
      done = true
      return first
    }
    const ws = new WebSocket(url, [...protocols], options)
    ws.on("open", () => {
      if (!done) handlers.onOpen(ws.protocol)
    })
    ws.on("message", (data, isBinary) => {
      if (done) return
      // ws hands a Buffer (its default binaryType): bytes for a binary message, UTF-8 text for a text one
      const bytes = data as Buffer
      handlers.onMessage(isBinary ? bytes : bytes.toString())
    })
    ws.on("close", (code, reason) => {
      if (finish()) handlers.onClose(code, reason.toString())
    })
    // Errors are always followed by "close", which carries what the client acts on.
    ws.on("error", () => {})
    ws.on("unexpected-response", (_request, response) => {
      let body = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => {
        if (body.length < MAX_REFUSAL_BODY) body += chunk
      })
      const refuse = () => {
        if (finish()) handlers.onRefused(response.statusCode ?? 0, body.slice(0, MAX_REFUSAL_BODY))
        ws.terminate()
      }
      response.on("end", refuse)
      response.on("error", refuse)
    })
    return {
      send: (data) => {
        if (!done && ws.readyState === WebSocket.OPEN) ws.send(data)
      },
      close: (code, reason) => {
        done = true
        ws.close(code, reason)
      },
      terminate: () => {
        done = true
        ws.terminate()
      }
    }
  }

const defaultSocket = wsSocket()

/** `Client.make` with `ws` unless `options.socket` says otherwise. */
export const make: typeof Client.make = (protocol, options) =>
  Client.make(protocol, { ...options, socket: options.socket ?? defaultSocket })

/** `ClientEffect.make` with `ws` unless `options.socket` says otherwise. */
export const makeEffect: typeof ClientEffect.make = (protocol, options) =>
  ClientEffect.make(protocol, { ...options, socket: options.socket ?? defaultSocket })
