/**
 * A plain WebSocket — `new WebSocket(url)`, no subprotocol, JSON by hand — on a server that allows anonymous
 * access: welcomed at once in the newest version (or `?v=N`), one frame per message (or `?batch=1`), kept alive
 * by the WebSocket-level pongs every client library sends by itself, and closed (4002) when it does not answer
 * them. A token can come in the URL; an unknown version is refused with 400 and the versions spoken.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { WebSocket } from "ws"
import { TidingsServer } from "../../src/server/Server.ts"
import { eventually } from "../support/until.ts"
import { sign, testServerLayer } from "./support/testServer.ts"

const HEARTBEAT_MS = 600

interface Plain {
  readonly ws: WebSocket
  /** Every message as received (one string per WebSocket message). */
  readonly messages: Array<string>
  readonly frames: () => Array<Record<string, unknown>>
  readonly closed: Promise<number>
}

const open = (url: string, options: { autoPong?: boolean } = {}) =>
  Effect.promise(
    () =>
      new Promise<Plain>((resolve, reject) => {
        const ws = new WebSocket(url, { autoPong: options.autoPong ?? true })
        const messages: Array<string> = []
        ws.on("message", (data) => messages.push(data.toString()))
        const closed = new Promise<number>((done) => ws.on("close", (code) => done(code)))
        ws.on("open", () =>
          resolve({
            ws,
            messages,
            frames: () => messages.flatMap((m) => m.split("\n").map((line) => JSON.parse(line))),
            closed
          })
        )
        ws.on("unexpected-response", (_req, res) => {
          let body = ""
          res.on("data", (chunk: Buffer) => (body += chunk.toString()))
          res.on("end", () => reject(new Error(`HTTP ${res.statusCode} ${body}`)))
        })
        ws.on("error", reject)
      })
  )

const channel = () => `public:${Math.random().toString(36).slice(2, 10)}`

layer(testServerLayer({ anonymous: true, timing: { heartbeatMs: HEARTBEAT_MS } }), { excludeTestServices: true })(
  "plain WebSocket",
  (it) => {
    it.effect("is welcomed at once in the newest version and gets one frame per message", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const client = yield* open(server.url)
        yield* eventually("welcome", () => client.messages.length > 0)
        expect(client.frames()[0]).toMatchObject({ type: "welcome", protocol: "chat", version: 2, user: null })
        const room = channel()
        client.ws.send(JSON.stringify({ type: "subscribe", channel: room }))
        yield* eventually("subscribed", () => client.frames().some((f) => f.type === "subscribed"))
        yield* Effect.all([1, 2, 3].map((i) => server.publishUnknown(room, "said", { from: "x", body: `m${i}` })))
        yield* eventually("3 events", () => client.frames().filter((f) => f.type === "event").length === 3)
        // every message is exactly one JSON frame
        for (const message of client.messages) expect(message).not.toContain("\n")
        expect(
          client
            .frames()
            .filter((f) => f.type === "event")
            .map((f) => (f.data as { body: string }).body)
        ).toEqual(["m1", "m2", "m3"])
        client.ws.close()
      })
    )

    it.effect("asks for a version with ?v= and for batches with ?batch=1; an unknown version is refused", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const v1 = yield* open(`${server.url}?v=1&batch=1`)
        yield* eventually("welcome", () => v1.messages.length > 0)
        expect(v1.frames()[0]).toMatchObject({ type: "welcome", version: 1 })
        const room = channel()
        v1.ws.send(JSON.stringify({ type: "subscribe", channel: room }))
        yield* eventually("subscribed", () => v1.frames().some((f) => f.type === "subscribed"))
        // published in one go: they leave in one pass, so batched into one message
        yield* Effect.all([1, 2, 3].map((i) => server.publishUnknown(room, "said", { from: "x", body: `m${i}` })))
        yield* eventually("3 events", () => v1.frames().filter((f) => f.type === "event").length === 3)
        expect(v1.messages.some((m) => m.split("\n").length > 1)).toBe(true)
        // v1's shape of `said`: `text`, not `body`
        expect(v1.frames().find((f) => f.type === "event")).toMatchObject({ data: { from: "x", text: "m1" } })
        v1.ws.close()
        const refused = yield* Effect.flip(Effect.tryPromise(() => Effect.runPromise(open(`${server.url}?v=9`))))
        expect(String(refused.cause)).toMatch(/HTTP 400 .*unsupported_version.*tidings\.chat\.v1\.json/)
      })
    )

    it.effect("a token in the URL is used; a client that only listens stays, one that never pongs is closed", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const token = yield* Effect.promise(() => sign({ sub: "ann", channels: ["room:*"] }))
        const listener = yield* open(`${server.url}?token=${token}`)
        const deaf = yield* open(server.url, { autoPong: false })
        yield* eventually("welcomes", () => listener.messages.length > 0 && deaf.messages.length > 0)
        expect(listener.frames()[0]).toMatchObject({ type: "welcome", user: "ann" })
        // no JSON pings to answer: heartbeats are WebSocket pings, which ws answers by itself
        const code = yield* Effect.promise(() => deaf.closed)
        expect(code).toBe(4002)
        yield* Effect.sleep(HEARTBEAT_MS * 2)
        expect(listener.ws.readyState).toBe(WebSocket.OPEN)
        expect(listener.frames().some((f) => f.type === "ping")).toBe(false)
        listener.ws.close()
      })
    )
  }
)
