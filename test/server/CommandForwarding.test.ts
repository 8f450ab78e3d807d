/**
 * Commands forwarded over HTTP (src/server/forward): a real tidings server whose chat commands are bound to a real
 * node:http endpoint on 127.0.0.1, which checks every request with Forward.verify (and a replay cache) and answers
 * by what the payload asks for. The typed client sees the endpoint's result and typed error; a timeout, a 5xx and a
 * refused connection as `unavailable`; a wrong shape, a non-JSON body and a 4xx as `internal`. Then the verifier
 * alone: a tampered body, a wrong secret, a stale timestamp and a replayed signature are refused.
 */
import { readFileSync } from "node:fs"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { fileURLToPath } from "node:url"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Layer, Logger, Schema } from "effect"
import * as Client from "../../src/client/node.ts"
import * as Protocol from "../../src/protocol/Protocol.ts"
import * as Forward from "../../src/server/forward/index.ts"
import * as Server from "../../src/server/Server.ts"
import * as Memory from "../../src/transports/Memory.ts"
import { freePort } from "../support/freePort.ts"
import { eventually } from "../support/until.ts"
import { ChatProtocol } from "./support/chatProtocol.ts"
import { SECRET, sign } from "./support/testServer.ts"

const FORWARD_SECRET = "forward-secret-0123456789-abcdef"
const TIMEOUT_MS = 1_000

interface Received {
  readonly path: string
  readonly headers: IncomingMessage["headers"]
  readonly body: string
  readonly verified: Forward.VerifyResult
  /** Set once the gateway went away before the answer was written. */
  aborted: boolean
}

/** Every request the endpoint got, in arrival order. */
const received: Array<Received> = []
const replay = new Forward.ReplayCache(1_000)

const json = (res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}) =>
  res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(value))

/** The application's endpoint: verifies, then answers what `send`'s body or `slow`'s ms asks for. */
const answer = (req: IncomingMessage, res: ServerResponse) => {
  const chunks: Array<Buffer> = []
  req.on("data", (chunk: Buffer) => chunks.push(chunk))
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8")
    const verified = Forward.verify(
      FORWARD_SECRET,
      { timestamp: req.headers[Forward.TIMESTAMP_HEADER], signature: req.headers[Forward.SIGNATURE_HEADER], body },
      { replay }
    )
    const entry: Received = { path: req.url ?? "", headers: req.headers, body, verified, aborted: false }
    received.push(entry)
    res.on("close", () => {
      if (!res.writableFinished) entry.aborted = true
    })
    if (!verified.ok) return json(res, 401, { error: verified.reason })
    const request = JSON.parse(body) as Forward.ForwardedCommand
    if (request.command === "shift") {
      // wire form in, wire form out: `at` is a string on the wire, a number in the application
      const { at } = request.payload as { at: string }
      return json(res, 200, { ok: true, result: { at: String(Number(at) + 1), wire: typeof at } })
    }
    const payload = request.payload as { body?: string; ms?: number }
    if (request.command === "slow") {
      setTimeout(() => json(res, 200, { ok: true, result: { done: true } }), payload.ms).unref()
      return
    }
    switch (payload.body) {
      case "ok":
        return json(res, 200, { ok: true, result: { offset: 7 } })
      case "typed":
        return json(res, 200, { ok: false, error: { _tag: "NotAllowed", reason: `not for ${request.user}` } })
      case "created":
        return json(res, 201, { ok: true, result: { offset: 8 } })
      case "500":
        return json(res, 500, { error: "boom" })
      case "503":
        return json(res, 503, { error: "busy" }, { "retry-after": "7" })
      case "shape":
        return json(res, 200, { ok: true, result: { offset: "seven" } })
      case "wrong error":
        return json(res, 200, { ok: false, error: { _tag: "Other" } })
      case "no ok":
        return json(res, 200, { result: { offset: 1 } })
      case "not json":
        return res.writeHead(200, { "content-type": "text/html" }).end("<html>hello</html>")
      case "404":
        return json(res, 404, { error: "no such route" })
      case "redirect":
        return res.writeHead(307, { location: "/elsewhere" }).end()
      default:
        return json(res, 400, { error: `unknown scenario ${payload.body}` })
    }
  })
}

/** A protocol whose schemas change a value between wire and application (a number sent as a string). */
const Later = Protocol.make(
  "later",
  Protocol.version({
    version: 1,
    events: {},
    commands: {
      shift: Protocol.command({
        payload: Schema.Struct({ at: Schema.NumberFromString }),
        result: Schema.Struct({ at: Schema.NumberFromString, wire: Schema.String }),
        error: Schema.Struct({ _tag: Schema.tag("TooLate") })
      })
    }
  })
)

/** The endpoint's address once the layer has started it. */
let endpointBase = ""

const logs: Array<string> = []
const capture = Logger.map(Logger.formatStructured, (entry) => {
  logs.push(JSON.stringify(entry))
})

/** The endpoint, then a tidings server whose commands go to it; both closed with the layer. */
const forwardingServer = Layer.unwrap(
  Effect.gen(function* () {
    const http = yield* Effect.acquireRelease(
      Effect.callback<ReturnType<typeof createServer>>((resume) => {
        const server = createServer(answer)
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) =>
        Effect.callback<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
    endpointBase = base
    const closedPort = yield* Effect.promise(() => freePort())
    return Server.layer({
      protocol: ChatProtocol,
      port: 0,
      auth: { secret: SECRET },
      handlers: {
        ...Forward.handlers(ChatProtocol, {
          commands: { send: `${base}/commands/send` },
          secret: FORWARD_SECRET,
          timeoutMs: TIMEOUT_MS
        }),
        // several commands to one endpoint (here one)
        ...Forward.handlers(ChatProtocol, {
          url: `${base}/commands`,
          commands: ["slow"],
          secret: FORWARD_SECRET,
          timeoutMs: TIMEOUT_MS
        }),
        // nothing listens there
        fail: Forward.to(ChatProtocol, "fail", `http://127.0.0.1:${closedPort}/`, { secret: FORWARD_SECRET }),
        // signed with a secret the endpoint does not know: it answers 401
        boom: Forward.to(ChatProtocol, "boom", `${base}/commands/boom`, { secret: "some-other-secret-0123456789" })
      }
    })
  })
).pipe(Layer.provide(Memory.layer()), Layer.provide(Logger.layer([capture])))

const chatClient = (url: string, token: string) => Client.make(ChatProtocol, { url, version: 2, token: () => token })

const withClient = <A>(url: string, use: (client: ReturnType<typeof chatClient>) => Promise<A>) =>
  Effect.promise(async () => {
    const client = chatClient(url, await sign({ sub: "alice", channels: ["room:*"] }))
    try {
      return await use(client)
    } finally {
      client.close()
    }
  })

/** What a command promise settled with: its result, or the error it rejected with. */
const settle = <A>(promise: Promise<A>): Promise<{ ok: true; value: A } | { ok: false; error: unknown }> =>
  promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error })
  )

const sendBody = (body: string) => ({ channel: "room:a", body, loud: false })

const lastReceived = () => received[received.length - 1]!

layer(forwardingServer, { excludeTestServices: true })("commands forwarded over HTTP", (it) => {
  it.effect("a good answer reaches the client as the typed result; the endpoint verified the caller", () =>
    Effect.gen(function* () {
      const server = yield* Server.TidingsServer
      const before = received.length
      const result = yield* withClient(server.url, (client) => client.command("send", sendBody("ok")))
      expect(result).toEqual({ offset: 7 })
      expect(received.length).toBe(before + 1)
      const request = lastReceived()
      expect(request.path).toBe("/commands/send")
      expect(request.verified.ok).toBe(true)
      expect(request.headers["content-type"]).toBe("application/json")
      expect(request.headers[Forward.SIGNATURE_HEADER]).toMatch(/^v1=[0-9a-f]{64}$/)
      const body = JSON.parse(request.body) as Forward.ForwardedCommand
      expect(body).toMatchObject({
        protocol: "chat",
        version: 2,
        command: "send",
        payload: sendBody("ok"),
        user: "alice"
      })
      expect(typeof body.session).toBe("string")
      expect(typeof body.connection).toBe("string")
    })
  )

  it.effect("a 2xx other than 200 is an answer too", () =>
    Effect.gen(function* () {
      const server = yield* Server.TidingsServer
      const result = yield* withClient(server.url, (client) => client.command("send", sendBody("created")))
      expect(result).toEqual({ offset: 8 })
    })
  )

  it.effect("an older client's command reaches the endpoint in the newest version's form", () =>
    Effect.gen(function* () {
      const server = yield* Server.TidingsServer
      const token = yield* Effect.promise(() => sign({ sub: "bob", channels: ["room:*"] }))
      const result = yield* Effect.promise(async () => {
        const client = Client.make(ChatProtocol, { url: server.url, version: 1, token: () => token })
        try {
          return await settle(client.command("send", { channel: "room:a", text: "ok" }))
        } finally {
          client.close()
        }
      })
      expect(result).toEqual({ ok: true, value: { offset: 7 } })
      const body = JSON.parse(lastReceived().body) as Forward.ForwardedCommand
      expect(body.payload).toEqual({ channel: "room:a", body: "ok", loud: false })
      expect(body.user).toBe("bob")
    })
  )

  it.effect("the payload goes in its encoded form, and the answer is decoded with the command's schema", () =>
    Effect.gen(function* () {
      const shift = Forward.to(Later, "shift", `${endpointBase}/commands/shift`, { secret: FORWARD_SECRET })
      const result = yield* shift(
        { at: 41 },
        {
          user: "carol",
          session: "s1",
          connection: "c1",
          canRead: () => false,
          publish: () => Effect.die(new Error("not used"))
        }
      )
      expect(result).toEqual({ at: 42, wire: "string" })
      expect(JSON.parse(lastReceived().body)).toEqual({
        protocol: "later",
        version: 1,
        command: "shift",
        payload: { at: "41" },
        user: "carol",
        session: "s1",
        connection: "c1"
      })
    })
  )

  it.effect("the endpoint's typed error reaches the client as CommandFailed", () =>
    Effect.gen(function* () {
      const server = yield* Server.TidingsServer
      const outcome = yield* withClient(server.url, (client) => settle(client.command("send", sendBody("typed"))))
      expect(outcome.ok).toBe(false)
      const error = (outcome as { error: unknown }).error
      expect(error).toBeInstanceOf(Client.CommandFailed)
      expect((error as Client.CommandFailed).error).toEqual({ _tag: "NotAllowed", reason: "not for alice" })
    })
  )

  it.effect("an endpoint slower than the timeout, a 5xx and a refused connection are `unavailable`", () =>
    Effect.gen(function* () {
      const server = yield* Server.TidingsServer
      const outcomes = yield* withClient(server.url, async (client) => ({
        fast: await settle(client.command("slow", { ms: 20 })),
        slow: await settle(client.command("slow", { ms: TIMEOUT_MS * 3 })),
        e500: await settle(client.command("send", sendBody("500"))),
        e503: await settle(client.command("send", sendBody("503"))),
        refused: await settle(client.command("fail", {}))
      }))
      expect(outcomes.fast).toEqual({ ok: true, value: { done: true } })
      const rejected = (outcome: { ok: boolean; error?: unknown }) => {
        expect(outcome.ok).toBe(false)
        expect(outcome.error).toBeInstanceOf(Client.CommandRejected)
        return outcome.error as Client.CommandRejected
      }
      expect(rejected(outcomes.slow)).toMatchObject({ code: "unavailable", retryAfterMs: 1_000 })
      expect(rejected(outcomes.slow).message).toContain(`no answer within ${TIMEOUT_MS} ms`)
      expect(rejected(outcomes.e500)).toMatchObject({ code: "unavailable", retryAfterMs: 1_000 })
      // the endpoint's Retry-After (seconds) becomes the retry delay
      expect(rejected(outcomes.e503)).toMatchObject({ code: "unavailable", retryAfterMs: 7_000 })
      expect(rejected(outcomes.refused)).toMatchObject({ code: "unavailable" })
      expect(rejected(outcomes.refused).message).toContain("ECONNREFUSED")
      // the client is never told where the endpoint is
      for (const outcome of [outcomes.slow, outcomes.e500, outcomes.refused]) {
        expect(rejected(outcome).message).not.toContain("127.0.0.1")
      }
      // the timed-out request was aborted, not left running
      const slowRequest = received.find(
        (r) => r.path === "/commands" && (JSON.parse(r.body) as { payload: { ms: number } }).payload.ms > TIMEOUT_MS
      )
      yield* eventually("the endpoint saw the timed-out request go away", () => slowRequest?.aborted === true)
    })
  )

  it.effect("a wrong shape, a non-JSON body, a 4xx and a redirect are `internal`, and logged with the reason", () =>
    Effect.gen(function* () {
      const server = yield* Server.TidingsServer
      const scenarios = ["shape", "wrong error", "no ok", "not json", "404", "redirect"] as const
      const outcomes = yield* withClient(server.url, async (client) => {
        const all: Array<{ ok: boolean; error?: unknown }> = []
        for (const scenario of scenarios) all.push(await settle(client.command("send", sendBody(scenario))))
        return all
      })
      for (const outcome of outcomes) {
        expect(outcome.ok).toBe(false)
        expect(outcome.error).toBeInstanceOf(Client.CommandRejected)
        expect((outcome.error as Client.CommandRejected).code).toBe("internal")
      }
      const reasons = [
        "does not match the command's schema at result.offset",
        "does not match the command's schema at error._tag",
        'answer is not {\\"ok\\": true',
        "answer is not JSON",
        "endpoint answered 404",
        "endpoint answered 307"
      ]
      for (const reason of reasons) {
        yield* eventually(`a log line says ${reason}`, () =>
          logs.some((line) => line.includes("ForwardingFailed") && line.includes(reason))
        )
      }
      // the redirect was not followed
      expect(received.some((r) => r.path === "/elsewhere")).toBe(false)
    })
  )

  it.effect("a request signed with another secret is refused by the endpoint; the client gets `internal`", () =>
    Effect.gen(function* () {
      const server = yield* Server.TidingsServer
      const outcome = yield* withClient(server.url, (client) => settle(client.command("boom", {})))
      expect(outcome.ok).toBe(false)
      expect((outcome as { error: Client.CommandRejected }).error.code).toBe("internal")
      expect(lastReceived()).toMatchObject({ path: "/commands/boom", verified: { ok: false, reason: "bad_signature" } })
    })
  )

  it.effect("a request replayed to the endpoint is refused by its replay cache", () =>
    Effect.gen(function* () {
      const server = yield* Server.TidingsServer
      yield* withClient(server.url, (client) => client.command("send", sendBody("ok")))
      const original = lastReceived()
      expect(original.verified.ok).toBe(true)
      const replayed = yield* Effect.promise(() =>
        fetch(`http://${original.headers.host}${original.path}`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            [Forward.TIMESTAMP_HEADER]: String(original.headers[Forward.TIMESTAMP_HEADER]),
            // an extra entry does not make it another request
            [Forward.SIGNATURE_HEADER]: `${original.headers[Forward.SIGNATURE_HEADER]},v1=${"0".repeat(64)}`
          },
          body: original.body
        }).then(async (response) => ({ status: response.status, body: await response.json() }))
      )
      expect(replayed).toEqual({ status: 401, body: { error: "replayed" } })
    })
  )

  it.effect("the caller going away aborts the request", () =>
    Effect.gen(function* () {
      const server = yield* Server.TidingsServer
      const before = received.length
      const token = yield* Effect.promise(() => sign({ sub: "alice", channels: ["room:*"] }))
      const client = chatClient(server.url, token)
      const pending = settle(client.command("slow", { ms: TIMEOUT_MS * 5 }))
      yield* eventually("the endpoint got the request", () => received.length > before)
      const request = received[before]!
      const closedAt = Date.now()
      client.close()
      yield* Effect.promise(() => pending)
      yield* eventually("the endpoint saw the request go away", () => request.aborted)
      // well before the timeout would have aborted it
      expect(Date.now() - closedAt).toBeLessThan(TIMEOUT_MS * 0.8)
    })
  )
})

describe("Forward.verify", () => {
  const body = JSON.stringify({ command: "send", payload: { channel: "room:a", body: "hi", loud: false } })
  const now = 1_700_000_000_000
  const signed = (at = now, secret = FORWARD_SECRET) => {
    const headers = Forward.headers(secret, body, at)
    return { timestamp: headers[Forward.TIMESTAMP_HEADER], signature: headers[Forward.SIGNATURE_HEADER], body }
  }

  it("accepts what the gateway signs, with the timestamp it carries", () => {
    expect(Forward.verify(FORWARD_SECRET, signed(), { now })).toEqual({ ok: true, timestamp: now })
    // the signature is over "<timestamp>.<body>", hex HMAC-SHA256
    expect(signed().signature).toBe(Forward.sign(FORWARD_SECRET, now, body))
    expect(Forward.verify(FORWARD_SECRET, { ...signed(), body: Buffer.from(body) }, { now }).ok).toBe(true)
  })

  it("signs as docs/bridges.md says (its worked example)", () => {
    const sent = JSON.stringify({
      protocol: "shop",
      version: 1,
      command: "order",
      payload: { sku: "tea-42", quantity: 2 },
      user: "alice",
      session: "kq3Vd1m0c5Yq2hTQW7n0Xw",
      connection: "Rb1n4f0xq2Z8kT0m"
    })
    const signature = "v1=e743df23a7ef28bf89e87622a9cd97e2f15dc0e3d85758cf48beb923ca2e279d"
    expect(Forward.sign("change-me-to-a-long-random-secret", 1733300000000, sent)).toBe(signature)
    const doc = readFileSync(fileURLToPath(new URL("../../docs/bridges.md", import.meta.url)), "utf8")
    expect(doc).toContain(`x-tidings-signature: ${signature}`)
    expect(doc).toContain("x-tidings-timestamp: 1733300000000")
  })

  it("refuses a tampered body, a changed timestamp and a wrong secret", () => {
    const tampered = { ...signed(), body: body.replace("hi", "ho") }
    expect(Forward.verify(FORWARD_SECRET, tampered, { now })).toMatchObject({ ok: false, reason: "bad_signature" })
    const retimed = { ...signed(), timestamp: String(now + 1) }
    expect(Forward.verify(FORWARD_SECRET, retimed, { now })).toMatchObject({ ok: false, reason: "bad_signature" })
    const otherSecret = signed(now, "another-secret-0123456789-abcdef")
    expect(Forward.verify(FORWARD_SECRET, otherSecret, { now })).toMatchObject({ ok: false, reason: "bad_signature" })
    // while a secret is rotated, either may have signed
    expect(Forward.verify(["another-secret-0123456789-abcdef", FORWARD_SECRET], otherSecret, { now }).ok).toBe(true)
  })

  it("refuses missing or unreadable headers", () => {
    const good = signed()
    for (const request of [
      { ...good, timestamp: undefined },
      { ...good, timestamp: "yesterday" },
      { ...good, signature: undefined },
      { ...good, signature: good.signature.replace("v1=", "v0=") },
      { ...good, signature: good.signature.slice(0, 20) }
    ]) {
      expect(Forward.verify(FORWARD_SECRET, request, { now })).toMatchObject({ ok: false, reason: "malformed" })
    }
  })

  it("refuses a timestamp outside the tolerance window, either way", () => {
    const minute = 60_000
    expect(Forward.verify(FORWARD_SECRET, signed(now - 4 * minute), { now }).ok).toBe(true)
    expect(Forward.verify(FORWARD_SECRET, signed(now - 6 * minute), { now })).toMatchObject({
      ok: false,
      reason: "stale"
    })
    expect(Forward.verify(FORWARD_SECRET, signed(now + 6 * minute), { now })).toMatchObject({
      ok: false,
      reason: "stale"
    })
    expect(Forward.verify(FORWARD_SECRET, signed(now - 2 * minute), { now, toleranceMs: minute })).toMatchObject({
      ok: false,
      reason: "stale"
    })
  })

  it("with a replay cache, refuses the same signed request twice, and forgets it once it is stale anyway", () => {
    const cache = new Forward.ReplayCache()
    const request = signed()
    expect(Forward.verify(FORWARD_SECRET, request, { now, replay: cache }).ok).toBe(true)
    expect(Forward.verify(FORWARD_SECRET, request, { now: now + 1_000, replay: cache })).toMatchObject({
      ok: false,
      reason: "replayed"
    })
    // a refused request is not remembered: the same body signed a moment later is another request
    expect(Forward.verify(FORWARD_SECRET, signed(now + 1), { now: now + 1_000, replay: cache }).ok).toBe(true)
    expect(cache.size).toBe(2)
    // past the window it is stale, and the cache drops it
    const later = now + Forward.DEFAULT_TOLERANCE_MS + 10_000
    expect(Forward.verify(FORWARD_SECRET, request, { now: later, replay: cache })).toMatchObject({ reason: "stale" })
    expect(Forward.verify(FORWARD_SECRET, signed(later), { now: later, replay: cache }).ok).toBe(true)
    expect(cache.size).toBe(1)
  })

  it("a replay cache holds at most maxEntries signatures, the oldest going first", () => {
    const cache = new Forward.ReplayCache(2)
    for (const at of [now, now + 1, now + 2]) {
      expect(Forward.verify(FORWARD_SECRET, signed(at), { now, replay: cache }).ok).toBe(true)
    }
    expect(cache.size).toBe(2)
    expect(Forward.verify(FORWARD_SECRET, signed(now + 2), { now, replay: cache }).ok).toBe(false)
    // the oldest was forgotten to stay within bounds
    expect(Forward.verify(FORWARD_SECRET, signed(now), { now, replay: cache }).ok).toBe(true)
  })
})

describe("Forward.handlers", () => {
  it("refuses a command the protocol does not have, and a URL that is not http(s)", () => {
    expect(() =>
      // @ts-expect-error: not a command of the chat protocol
      Forward.handlers(ChatProtocol, { commands: { sned: "http://127.0.0.1/" }, secret: FORWARD_SECRET })
    ).toThrow(/no command "sned"/)
    expect(() => Forward.to(ChatProtocol, "send", "ftp://127.0.0.1/", { secret: FORWARD_SECRET })).toThrow(/http/)
    expect(() => Forward.to(ChatProtocol, "send", "http://127.0.0.1/", { secret: "" })).toThrow(/empty/)
  })
})
