/**
 * Cross-origin HTTP (src/server/http/Cors.ts): an allowed origin gets `Access-Control-Allow-Origin` on an SSE
 * stream and on a presence query, and a preflight answer; another origin gets none, so a browser keeps it out.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Server from "../../src/server/Server.ts"
import * as Memory from "../../src/transports/Memory.ts"
import { ChatProtocol } from "./support/chatProtocol.ts"
import { chatHandlers, SECRET, sign } from "./support/testServer.ts"

const ALLOWED = "https://app.example"

const serverLayer = Server.layer({
  protocol: ChatProtocol,
  handlers: chatHandlers,
  port: 0,
  auth: { secret: SECRET },
  corsOrigins: [ALLOWED]
}).pipe(Layer.provide(Memory.layer()))

layer(serverLayer, { excludeTestServices: true })("cross-origin HTTP", (it) => {
  it.effect("an allowed origin is answered with Access-Control-Allow-Origin; another is not", () =>
    Effect.gen(function* () {
      const server = yield* Server.TidingsServer
      const token = yield* Effect.promise(() => sign({ sub: "ann", channels: ["room:*"] }))
      const events = `http://127.0.0.1:${server.port}/v1/channels/room%3A1/events?token=${token}`
      const open = (origin: string) =>
        Effect.promise(async () => {
          const controller = new AbortController()
          const response = await fetch(events, {
            headers: { accept: "text/event-stream", origin },
            signal: controller.signal
          })
          const allow = response.headers.get("access-control-allow-origin")
          controller.abort()
          return { status: response.status, allow }
        })
      expect(yield* open(ALLOWED)).toEqual({ status: 200, allow: ALLOWED })
      expect(yield* open("https://evil.example")).toEqual({ status: 200, allow: null })

      const preflight = yield* Effect.promise(() =>
        fetch(`http://127.0.0.1:${server.port}/v1/channels/room%3A1/presence`, {
          method: "OPTIONS",
          headers: { origin: ALLOWED, "access-control-request-headers": "authorization" }
        })
      )
      expect(preflight.status).toBe(204)
      expect(preflight.headers.get("access-control-allow-origin")).toBe(ALLOWED)
      expect(preflight.headers.get("access-control-allow-headers")).toContain("authorization")
    })
  )
})
