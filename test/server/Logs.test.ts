/** Structured logs carry the connection id, the user and the channel, at the configured level. */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer, Logger, References } from "effect"
import { TidingsServer } from "../../src/server/Server.ts"
import { connect, next } from "./support/session.ts"
import { testServerLayer } from "./support/testServer.ts"

const lines: Array<{ message: unknown; level: string; annotations: Record<string, unknown> }> = []
const capture = Logger.map(Logger.formatStructured, (entry) => {
  lines.push({ message: entry.message, level: entry.level, annotations: entry.annotations })
})

const logged = testServerLayer().pipe(
  Layer.provide(Logger.layer([capture])),
  Layer.provide(Layer.succeed(References.MinimumLogLevel, "Debug"))
)

layer(logged, { excludeTestServices: true })("logs", (it) => {
  it.effect("a refused subscribe and a close are logged with connection, user and channel", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const client = yield* connect(server.url, { sub: "logan", channels: ["room:*"] })
      client.send({ type: "subscribe", channel: "secret:x" })
      yield* next(client, (f) => f.type === "error")
      client.close()
      yield* Effect.sleep("100 millis")
      const refused = lines.find((l) => String(l.message).includes("subscribe refused"))
      expect(refused?.annotations).toMatchObject({ user: "logan", channel: "secret:x" })
      expect(typeof refused?.annotations.connection).toBe("string")
      expect(lines.some((l) => String(l.message).includes("authenticated") && l.level === "DEBUG")).toBe(true)
    })
  )
})
