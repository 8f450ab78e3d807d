/**
 * The server's sockets report to their Connection directly (ConnectionSocket.ts, ws's automatic pong off): a
 * WebSocket ping is answered with a pong carrying its payload and the connection keeps working, and a socket the
 * peer closes or cuts is cleaned up (counted out of the open connections).
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { TidingsServer } from "../../src/server/Server.ts"
import { until } from "../support/until.ts"
import { connect, next } from "./support/session.ts"
import { testServerLayer } from "./support/testServer.ts"

const settled = (check: () => boolean) => Effect.promise(() => until(check))

layer(testServerLayer(), { excludeTestServices: true })("server sockets", (it) => {
  it.effect(
    "answer a WebSocket ping with its payload and stay usable",
    () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const client = yield* connect(server.url, { sub: "pinger" })
        const pong = Effect.promise(
          () => new Promise<string>((resolve) => client.ws.once("pong", (data) => resolve(String(data))))
        )
        client.ws.ping("are you there")
        expect(yield* pong).toBe("are you there")
        client.send({ type: "ping" })
        yield* next(client, (f) => f.type === "pong")
        client.ws.close()
      }),
    10_000
  )

  it.effect("are cleaned up when the peer closes or cuts the connection", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      // the previous test's client is gone first
      expect(yield* settled(() => server.stats.connectionsOpen === 0)).toBe(true)
      const closing = yield* connect(server.url, { sub: "leaver" })
      const cut = yield* connect(server.url, { sub: "cutter" })
      expect(server.stats.connectionsOpen).toBe(2)
      closing.ws.close()
      cut.ws.terminate()
      expect(yield* settled(() => server.stats.connectionsOpen === 0)).toBe(true)
    })
  )
})
