/**
 * Publishing over HTTP: validation errors with paths, auth refusals, idempotent retries, batches, and the
 * "query over HTTP, results over the socket" pattern; plus health, readiness and metrics.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { TidingsServer } from "../../src/server/Server.ts"
import { connect, next, subscribe, unique } from "./support/session.ts"
import { sign, testServerLayer } from "./support/testServer.ts"

const httpBase = (wsUrl: string) => wsUrl.replace("ws://", "http://").replace(/\/ws$/, "")

const post = (url: string, body: unknown, headers: Record<string, string> = { authorization: "Bearer test-api-key" }) =>
  Effect.promise(async () => {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body)
    })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  })

layer(testServerLayer(), { excludeTestServices: true })("http publish", (it) => {
  it.effect("publishes one event and a batch, answering with the assigned positions", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const channel = unique("room")
      const url = `${httpBase(server.url)}/v1/channels/${encodeURIComponent(channel)}/events`
      const one = yield* post(url, { event: "tick", data: { n: 1 } })
      expect(one.status).toBe(200)
      expect(one.body).toMatchObject({ channel, positions: [{ offset: 1 }] })
      const batch = yield* post(url, [
        { event: "tick", data: { n: 2 } },
        { event: "said", data: { from: "backend", body: "hello" } }
      ])
      expect(batch.body).toMatchObject({ positions: [{ offset: 2 }, { offset: 3 }] })
    })
  )

  it.effect("refuses invalid events with 400 and the path of the bad field; a bad batch appends nothing", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const channel = unique("room")
      const url = `${httpBase(server.url)}/v1/channels/${encodeURIComponent(channel)}/events`
      const bad = yield* post(url, { event: "tick", data: { n: "one" } })
      expect(bad).toMatchObject({ status: 400, body: { error: "invalid_event", path: ["data", "n"] } })
      const unknown = yield* post(url, { event: "teleport", data: {} })
      expect(unknown).toMatchObject({ status: 400, body: { error: "unknown_event", path: ["event"] } })
      const badBatch = yield* post(url, [
        { event: "tick", data: { n: 1 } },
        { event: "said", data: { from: "x" } }
      ])
      expect(badBatch).toMatchObject({ status: 400, body: { path: [1, "data", "body"] } })
      expect((yield* post(url, "{nope")).body).toMatchObject({ error: "bad_json" })
      const first = yield* post(url, { event: "tick", data: { n: 1 } })
      expect(first.body).toMatchObject({ positions: [{ offset: 1 }] })
    })
  )

  it.effect("refuses missing and wrong credentials, and a JWT without publish rights for the channel", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const channel = unique("room")
      const url = `${httpBase(server.url)}/v1/channels/${encodeURIComponent(channel)}/events`
      const event = { event: "tick", data: { n: 1 } }
      expect((yield* post(url, event, {})).status).toBe(401)
      expect((yield* post(url, event, { authorization: "Bearer wrong-key" })).status).toBe(401)
      const reader = yield* Effect.promise(() => sign({ sub: "u", channels: ["room:*"] }))
      expect((yield* post(url, event, { authorization: `Bearer ${reader}` })).status).toBe(403)
      const publisher = yield* Effect.promise(() => sign({ sub: "svc", publish: ["room:*"] }))
      expect((yield* post(url, event, { authorization: `Bearer ${publisher}` })).status).toBe(200)
    })
  )

  it.effect("an Idempotency-Key makes a retry return the original position instead of appending twice", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const channel = unique("room")
      const url = `${httpBase(server.url)}/v1/channels/${encodeURIComponent(channel)}/events`
      const headers = { authorization: "Bearer test-api-key", "idempotency-key": "order-42" }
      const first = yield* post(url, { event: "tick", data: { n: 1 } }, headers)
      const retry = yield* post(url, { event: "tick", data: { n: 1 } }, headers)
      expect(retry.body).toEqual(first.body)
      const other = yield* post(url, { event: "tick", data: { n: 2 } })
      expect(other.body).toMatchObject({ positions: [{ offset: 2 }] })
    })
  )

  it.effect("query over HTTP, results over the socket: a backend publishes a run's events to the user's channel", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const user = yield* connect(server.url, { sub: "alice" })
      yield* subscribe(user, "user:alice")
      // the app's backend received "what's the weather?" on its own HTTP API and answers through tidings
      const url = `${httpBase(server.url)}/v1/channels/${encodeURIComponent("user:alice")}/events`
      const words = ["It", "is", "sunny", "today."]
      const answer = yield* post(
        url,
        words.map((w, i) => ({ event: "said", data: { from: "assistant", body: i === 0 ? w : ` ${w}` } }))
      )
      expect(answer.status).toBe(200)
      yield* next(user, (f) => f.type === "event" && f.offset === words.length)
      const text = user
        .events("user:alice")
        .map((e) => (e.data as { body: string }).body)
        .join("")
      expect(text).toBe("It is sunny today.")
      user.close()
    })
  )

  it.effect("serves /healthz, /readyz and Prometheus /metrics", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const base = httpBase(server.url)
      const health = yield* Effect.promise(() => fetch(`${base}/healthz`))
      expect(health.status).toBe(200)
      const ready = yield* Effect.promise(() => fetch(`${base}/readyz`).then((r) => r.json()))
      expect(ready).toMatchObject({ ready: true })
      const client = yield* connect(server.url)
      client.send("{broken")
      yield* next(client, (f) => f.type === "error")
      const channel = unique("room")
      yield* subscribe(client, channel)
      yield* server.publishUnknown(channel, "tick", { n: 1 })
      yield* next(client, (f) => f.type === "event" && f.channel === channel)
      const text = yield* Effect.promise(() => fetch(`${base}/metrics`).then((r) => r.text()))
      expect(text).toMatch(/^tidings_delivery_latency_seconds_count [1-9]\d*$/m)
      expect(text).toMatch(/^tidings_deliveries_total [1-9]\d*$/m)
      expect(text).toMatch(/^tidings_connections_open \d+$/m)
      expect(text).toMatch(/^tidings_errors_total\{code="bad_json"\} [1-9]\d*$/m)
      expect(text).toContain("tidings_delivery_latency_seconds_bucket")
      client.close()
    })
  )
})
