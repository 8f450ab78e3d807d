/**
 * The connection's lifecycle: heartbeats, goaway, in-band token refresh, close codes, version refusal and
 * giving up after `maxAttempts`.
 */
import { describe, expect, it } from "vitest"
import * as Client from "../../src/client/node.ts"
import { eventually } from "./support/fakeServer.ts"
import { codecs, harness, sleep } from "./support/harness.ts"
import { demo, step } from "./support/testProtocol.ts"

describe.each(codecs)("Client lifecycle (%s)", (codec) => {
  const h = harness(codec)

  it("answers pings with pongs", async () => {
    const server = await h.server({ heartbeatMs: 20 })
    const client = h.client(server)
    await client.ready()
    await eventually(() => expect(server.latest()!.sent("pong").length).toBeGreaterThanOrEqual(2))
    expect(client.welcome?.heartbeatMs).toBe(20)
  })

  it("reconnects when the server goes silent for two heartbeats", async () => {
    const server = await h.server({ heartbeatMs: 40 })
    const client = h.client(server, { heartbeatSlackMs: 20 })
    const first = await server.welcomed(0)
    await client.ready()
    const mutedAt = Date.now()
    first.mute()
    await server.welcomed(1)
    // Not before 2 × 40 ms + 20 ms of silence (minus the time since the last ping).
    expect(Date.now() - mutedAt).toBeGreaterThanOrEqual(60)
    await eventually(() => expect(first.closeCode).toBeDefined())
    await eventually(() => expect(client.state).toBe("open"))
  })

  it("reconnects no sooner than goaway's reconnectAfterMs", async () => {
    const server = await h.server()
    const client = h.client(server)
    const first = await server.welcomed(0)
    await client.subscribe("run:1").ready()
    const at = Date.now()
    first.goaway(150)
    const second = await server.welcomed(1)
    const waited = Date.now() - at
    expect(waited).toBeGreaterThanOrEqual(145)
    expect(waited).toBeLessThan(150 * 2 + 1_000)
    await eventually(() => expect(second.sent("subscribe")).toHaveLength(1))
  })

  it("refreshes the token in band when the session is expiring soon", async () => {
    let issued = 0
    const server = await h.server({ authenticate: (token) => token })
    const client = h.client(server, { token: () => `token-${++issued}` })
    const conn = await server.welcomed(0)
    await client.ready()
    conn.expiringSoon(1_000)
    await eventually(() =>
      expect(conn.sent("authenticate")).toEqual([
        { type: "authenticate", token: "token-1" },
        { type: "authenticate", token: "token-2" }
      ])
    )
    await sleep(20)
    expect(server.connections).toHaveLength(1)
    expect(client.state).toBe("open")
  })

  it("reconnects with a fresh token after 4403 (token expired)", async () => {
    let issued = 0
    const server = await h.server({ authenticate: (token) => token })
    const client = h.client(server, { token: async () => `token-${++issued}` })
    ;(await server.welcomed(0)).close(4403, "token expired")
    const second = await server.welcomed(1)
    expect(second.received[0]).toMatchObject({ type: "authenticate", token: "token-2" })
    await eventually(() => expect(client.state).toBe("open"))
  })

  it("stops with Unauthorized on 4401 when the token is a plain string", async () => {
    const server = await h.server({ authenticate: (token) => (token === "good" ? "alice" : undefined) })
    const client = h.client(server, { token: "bad" })
    await expect(client.ready()).rejects.toMatchObject({ _tag: "Unauthorized", message: "bad token" })
    expect(client.state).toBe("closed")
    await sleep(100)
    expect(server.connections).toHaveLength(1)
  })

  it("on 4401 retries once with a fresh token from the getter", async () => {
    const tokens = ["bad", "good"]
    const server = await h.server({ authenticate: (token) => (token === "good" ? "alice" : undefined) })
    const client = h.client(server, { token: () => tokens.shift() ?? "bad" })
    await expect(client.ready()).resolves.toMatchObject({ user: "alice" })
    expect(server.connections).toHaveLength(2)
  })

  it("on 4401 stops after the one retry when the fresh token is refused too", async () => {
    const server = await h.server({ authenticate: () => undefined })
    const client = h.client(server, { token: () => "bad" })
    await expect(client.ready()).rejects.toMatchObject({ _tag: "Unauthorized" })
    await sleep(100)
    expect(server.connections).toHaveLength(2)
    expect(client.error?._tag).toBe("Unauthorized")
  })

  it("reconnects after a resumable close code and stops after 1000", async () => {
    const server = await h.server()
    const client = h.client(server)
    ;(await server.welcomed(0)).close(4500, "internal")
    const second = await server.welcomed(1)
    await eventually(() => expect(client.state).toBe("open"))
    second.close(1000, "bye")
    await eventually(() => expect(client.state).toBe("closed"))
    expect(client.error).toMatchObject({ _tag: "Disconnected" })
    await sleep(100)
    expect(server.connections).toHaveLength(2)
  })

  it("fails with ProtocolMismatch, without retrying, when the server answers 400", async () => {
    const server = await h.server({ versions: [2] })
    const client = Client.make(demo, { url: server.url, version: 1, backoff: { initialDelayMs: 10 } })
    h.defer(() => client.close())
    const error = await client.ready().catch((e: unknown) => e)
    expect(error).toBeInstanceOf(Client.ProtocolMismatch)
    expect(error).toMatchObject({ protocol: "demo", version: 1, supported: [2] })
    expect(client.state).toBe("closed")
    await sleep(100)
    expect(server.refused()).toBe(1)
  })

  it("gives up with ReconnectExhausted after maxAttempts", async () => {
    const server = await h.server()
    const client = h.client(server, { backoff: { initialDelayMs: 10, maxAttempts: 3 } })
    await client.ready()
    await server.close()
    await eventually(() => expect(client.state).toBe("closed"))
    expect(client.error).toMatchObject({ _tag: "ReconnectExhausted", attempts: 3 })
  })

  it("makes a browser-style client from a standard WebSocket constructor", async () => {
    const { WebSocket } = await import("ws")
    const server = await h.server()
    const client = Client.make(demo, {
      url: server.url,
      version: 2,
      codec,
      socket: Client.fromWebSocket(WebSocket as unknown as Client.WebSocketConstructor)
    })
    h.defer(() => client.close())
    await expect(client.ready()).resolves.toMatchObject({ version: 2 })
    expect(server.latest()!.msgpack).toBe(codec === "msgpack")
    const steps: Array<number> = []
    client.on("step_update", (data) => void steps.push(data.step))
    await client.subscribe("run:1").ready()
    server.publish("run:1", "step_update", step(1))
    server.publish("run:1", "step_update", step(2))
    await eventually(() => expect(steps).toEqual([1, 2]))
  })
})
