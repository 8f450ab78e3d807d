/**
 * The Promise client against the fake server: typed events and commands over a real socket, the ways a
 * command can fail, and the states a UI sees.
 */
import { describe, expect, it } from "vitest"
import {
  type ClientState,
  CommandFailed,
  CommandRejected,
  CommandTimeout,
  Disconnected,
  type EventMeta
} from "../../src/client/node.ts"
import { eventually } from "./support/fakeServer.ts"
import { codecs, harness, sleep } from "./support/harness.ts"
import { step } from "./support/testProtocol.ts"

describe.each(codecs)("Client (%s)", (codec) => {
  const h = harness(codec)

  it("negotiates, authenticates, and delivers typed events decoded for its version", async () => {
    const server = await h.server()
    const client = h.client(server, { token: "alice" })
    const got: Array<{ data: { step: number; at: Date }; meta: EventMeta }> = []
    client.on("step_update", (data, meta) => {
      got.push({ data, meta })
    })
    const sub = client.subscribe("run:1")
    const welcome = await client.ready()
    expect(welcome).toMatchObject({ protocol: "demo", version: 2, user: "alice" })
    expect(await sub.ready()).toMatchObject({ channel: "run:1", recovered: false, replayed: 0 })

    const conn = server.latest()!
    expect(conn.version).toBe(2)
    expect(conn.msgpack).toBe(codec === "msgpack")
    expect(conn.received[0]).toEqual({ type: "authenticate", token: "alice" })

    server.publish("run:1", "step_update", step(1))
    server.publish("run:1", "step_update", step(2, "done"))
    await eventually(() => expect(got).toHaveLength(2))
    expect(got[0]!.data.at).toBeInstanceOf(Date)
    expect(got[1]!.data).toEqual({ step: 2, status: "done", at: new Date(step(2).at) })
    expect(got.map((g) => g.meta.offset)).toEqual([1, 2])
    expect(got[0]!.meta).toMatchObject({ channel: "run:1", epoch: server.position("run:1").epoch })
    expect(sub.position()).toEqual(server.position("run:1"))
  })

  it("delivers to per-subscription handlers and stops after unsubscribe", async () => {
    const server = await h.server()
    const client = h.client(server)
    const events: Array<string> = []
    const sub = client.subscribe("run:1", { onEvent: (e) => void events.push(`${e.event}:${e.meta.offset}`) })
    sub.on("notice", (data) => {
      events.push(`notice handler:${data.text}`)
    })
    await sub.ready()
    server.publish("run:1", "notice", { text: "hi" })
    await eventually(() => expect(events).toEqual(["notice handler:hi", "notice:1"]))

    sub.unsubscribe()
    await eventually(() => expect(server.latest()!.sent("unsubscribe")).toHaveLength(1))
    server.publish("run:1", "notice", { text: "late" })
    await sleep(50)
    expect(events).toHaveLength(2)
  })

  it("sends typed commands encoded for its version and decodes the result", async () => {
    const seen: Array<unknown> = []
    const server = await h.server({
      onCommand: (name, payload) => {
        seen.push({ name, payload })
        return { ok: true, result: { runId: "r1", at: "2026-01-01T00:00:00.000Z" } }
      }
    })
    const client = h.client(server)
    const result = await client.command("start", { query: "q", notBefore: new Date("2026-02-01T00:00:00.000Z") })
    expect(result).toEqual({ runId: "r1", at: new Date("2026-01-01T00:00:00.000Z") })
    expect(seen).toEqual([{ name: "start", payload: { query: "q", notBefore: "2026-02-01T00:00:00.000Z" } }])
  })

  it("fails a command with CommandFailed carrying the decoded typed error", async () => {
    const server = await h.server({ onCommand: () => ({ ok: false, error: { reason: "quota", retryAfterMs: 500 } }) })
    const client = h.client(server)
    const error = await client.command("start", { query: "q" }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(CommandFailed)
    expect(error).toMatchObject({
      _tag: "CommandFailed",
      command: "start",
      error: { reason: "quota", retryAfterMs: 500 }
    })
  })

  it("fails a command with CommandRejected when the server answers with an error frame", async () => {
    const server = await h.server({
      onCommand: () => ({ reject: { code: "rate_limited", message: "slow down", path: [] } })
    })
    const client = h.client(server)
    const error = await client.command("start", { query: "q" }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(CommandRejected)
    expect(error).toMatchObject({ command: "start", code: "rate_limited", message: "slow down", path: [] })
  })

  it("carries the server's retry delay on an unavailable command (no worker took a run, say)", async () => {
    const server = await h.server({
      onCommand: () => ({ reject: { code: "unavailable", message: "no worker", path: [], retryAfterMs: 1000 } })
    })
    const client = h.client(server)
    const error = await client.command("start", { query: "q" }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(CommandRejected)
    expect(error).toMatchObject({ command: "start", code: "unavailable", retryAfterMs: 1000 })
  })

  it("rejects a payload that fails its schema before sending it", async () => {
    const server = await h.server({ onCommand: () => ({ ok: true, result: { runId: "r", at: "x" } }) })
    const client = h.client(server)
    await client.ready()
    const error = await client.command("start", { query: 42 } as never).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(CommandRejected)
    expect(error).toMatchObject({ code: "invalid_payload", path: ["payload", "query"] })
    await sleep(20)
    expect(server.latest()!.sent("command")).toHaveLength(0)
  })

  it("fails a reply that does not match the result schema with ProtocolViolation", async () => {
    const server = await h.server({ onCommand: () => ({ ok: true, result: { runId: 7 } }) })
    const client = h.client(server)
    const error = await client.command("start", { query: "q" }).catch((e: unknown) => e)
    expect(error).toMatchObject({ _tag: "ProtocolViolation", path: ["result", "runId"] })
  })

  it("times a command out", async () => {
    const server = await h.server({ onCommand: () => "silence" })
    const client = h.client(server, { commandTimeoutMs: 50 })
    const error = await client.command("start", { query: "q" }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(CommandTimeout)
    expect(error).toMatchObject({ command: "start", timeoutMs: 50 })
  })

  it("fails a pending command with Disconnected on close()", async () => {
    const server = await h.server({ onCommand: () => "silence" })
    const client = h.client(server)
    const pending = client.command("start", { query: "q" }).catch((e: unknown) => e)
    await eventually(() => expect(server.latest()?.sent("command")).toHaveLength(1))
    client.close()
    expect(await pending).toBeInstanceOf(Disconnected)
    expect(client.state).toBe("closed")
    expect(await client.command("start", { query: "again" }).catch((e: unknown) => e)).toBeInstanceOf(Disconnected)
  })

  it("fails a sent command with Disconnected when the connection drops, and never re-sends it", async () => {
    const server = await h.server({ onCommand: () => "silence" })
    const client = h.client(server)
    const pending = client.command("start", { query: "q" }).catch((e: unknown) => e)
    const first = await server.welcomed(0)
    await eventually(() => expect(first.sent("command")).toHaveLength(1))
    first.kill()
    expect(await pending).toBeInstanceOf(Disconnected)
    const second = await server.welcomed(1)
    await sleep(50)
    expect(second.sent("command")).toHaveLength(0)
  })

  it("holds a command issued while connecting until the welcome", async () => {
    const server = await h.server({
      onCommand: () => ({ ok: true, result: { runId: "r", at: "2026-01-01T00:00:00.000Z" } })
    })
    const client = h.client(server)
    expect(client.state).toBe("connecting")
    await expect(client.command("start", { query: "early" })).resolves.toMatchObject({ runId: "r" })
  })

  it("reports its state: connecting → open → reconnecting → open → closed", async () => {
    const server = await h.server()
    const client = h.client(server)
    const states: Array<ClientState> = [client.state]
    client.onState((s) => {
      states.push(s)
    })
    ;(await server.welcomed(0)).kill()
    await server.welcomed(1)
    await eventually(() => expect(client.state).toBe("open"))
    client.close()
    expect(states).toEqual(["connecting", "open", "reconnecting", "open", "closed"])
    expect(client.error).toBeUndefined()
  })
})
