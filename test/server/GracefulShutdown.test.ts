/**
 * Graceful shutdown. In process: 100 typed clients publish (commands) and receive on a shared channel while
 * their server node shuts down gracefully and a new node starts on the same port over the same log; every
 * client ends with every event exactly once, in order. As a process: `tidings serve` answers SIGTERM with
 * `goaway`, closes sockets with 1001, and exits 0.
 */
import { spawn } from "node:child_process"
import { resolve } from "node:path"
import { Effect, Exit, Layer, Scope } from "effect"
import { describe, expect, it } from "vitest"
import * as Client from "../../src/client/node.ts"
import * as Server from "../../src/server/Server.ts"
import * as Memory from "../../src/transports/Memory.ts"
import { Transport } from "../../src/transports/Transport.ts"
import { freePort } from "../support/freePort.ts"
import { ChatProtocol } from "./support/chatProtocol.ts"
import { connectRaw } from "./support/rawClient.ts"
import { chatHandlers, SECRET, sign } from "./support/testServer.ts"

const CLIENTS = 100
const channel = "room:all"

const startNode = (port: number, transport: Transport["Service"], maxOutboundBytes = 1024 * 1024) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(
      Server.layer({
        protocol: ChatProtocol,
        handlers: chatHandlers,
        port,
        auth: { secret: SECRET },
        limits: { commandsPerSecond: 1000, commandBurst: 1000, maxConnectionsPerUser: 1000, maxOutboundBytes },
        timing: { shutdownGraceMs: 2000 }
      }).pipe(Layer.provide(Layer.succeed(Transport, transport))),
      scope
    )
    return { scope, server: context }
  })

const until = async (check: () => boolean, what: string, timeoutMs = 20_000) => {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe("graceful shutdown", () => {
  it("100 clients publishing and receiving across a graceful restart end with every event exactly once", async () => {
    const transport = await Effect.runPromise(Memory.make())
    const port = await freePort()
    const first = await Effect.runPromise(startNode(port, transport))
    const url = `ws://127.0.0.1:${port}/ws`
    const token = () => sign({ sub: `user-${Math.random()}`, channels: ["room:*"] })
    const received: Array<Array<number>> = []
    const clients = Array.from({ length: CLIENTS }, (_, i) => {
      received.push([])
      const client = Client.make(ChatProtocol, {
        url,
        version: 2,
        token,
        backoff: { initialDelayMs: 50, maxDelayMs: 300 }
      })
      client.on("said", (_data, meta) => {
        received[i]!.push(meta.offset)
      })
      return client
    })
    await Promise.all(clients.map((c) => c.subscribe(channel).ready()))

    let publishing = true
    let accepted = 0
    let refused = 0
    const publishers = clients.map(async (client, i) => {
      while (publishing) {
        await client.command("send", { channel, body: `from ${i}`, loud: false }).then(
          () => accepted++,
          () => refused++
        )
        await new Promise((r) => setTimeout(r, 40 + Math.random() * 40))
      }
    })
    await new Promise((r) => setTimeout(r, 800))

    // shut the node down gracefully while traffic flows, then start a new node on the same port and log
    const shutdownStarted = Date.now()
    await Effect.runPromise(Scope.close(first.scope, Exit.void))
    const shutdownMs = Date.now() - shutdownStarted
    const second = await Effect.runPromise(startNode(port, transport))
    await new Promise((r) => setTimeout(r, 1200))
    publishing = false
    await Promise.all(publishers)

    const top = await Effect.runPromise(transport.top(channel))
    await until(() => received.every((r) => r.length >= top.offset), "every client to catch up")
    await new Promise((r) => setTimeout(r, 100))
    const expected = Array.from({ length: top.offset }, (_, i) => i + 1)
    let lost = 0
    let duplicated = 0
    let outOfOrder = 0
    for (const offsets of received) {
      const seen = new Set(offsets)
      lost += expected.filter((o) => !seen.has(o)).length
      duplicated += offsets.length - seen.size
      outOfOrder += offsets.filter((o, i) => i > 0 && o < offsets[i - 1]!).length
    }
    console.log(
      `graceful restart: ${CLIENTS} clients, ${top.offset} events (${accepted} commands accepted, ${refused} refused ` +
        `during the restart), shutdown took ${shutdownMs} ms; lost ${lost}, duplicated ${duplicated}, out of order ${outOfOrder}`
    )
    expect({ lost, duplicated, outOfOrder }).toEqual({ lost: 0, duplicated: 0, outOfOrder: 0 })
    expect(top.offset).toBeGreaterThanOrEqual(accepted)
    for (const client of clients) client.close()
    await Effect.runPromise(Scope.close(second.scope, Exit.void))
  }, 60_000)

  it("while draining, new upgrades get HTTP 503 draining", async () => {
    const transport = await Effect.runPromise(Memory.make())
    const port = await freePort()
    const node = await Effect.runPromise(startNode(port, transport, 64 * 1024 * 1024))
    const url = `ws://127.0.0.1:${port}/ws`
    const stuck = await connectRaw(url)
    stuck.send({ type: "authenticate", token: await sign({ sub: "slow", channels: ["room:*"] }) })
    await stuck.next((f) => f.type === "welcome")
    stuck.send({ type: "subscribe", channel: "room:big" })
    await stuck.next((f) => f.type === "subscribed")
    ;(stuck.ws as unknown as { _socket: import("node:net").Socket })._socket.pause()
    for (let i = 0; i < 250; i++)
      await Effect.runPromise(
        transport.append("room:big", {
          event: "said",
          data: JSON.stringify({ from: "x", body: "b".repeat(60_000) }),
          version: 2,
          time: 0
        })
      )
    await new Promise((r) => setTimeout(r, 100))
    const closing = Effect.runPromise(Scope.close(node.scope, Exit.void)) // waits for the stuck client's buffer
    await new Promise((r) => setTimeout(r, 100))
    const refused = await connectRaw(url).then(
      () => ({ status: 101, body: "{}" }),
      (e: { status?: number; body?: string; message: string }) => ({
        status: e.status ?? e.message,
        body: e.body ?? "{}"
      })
    )
    expect(refused?.status).toBe(503)
    expect(JSON.parse(refused.body)).toMatchObject({ error: "draining" })
    await closing
  }, 30_000)

  it("`tidings serve` answers SIGTERM with goaway, closes 1001, and exits 0", async () => {
    const port = await freePort()
    const child = spawn(
      process.execPath,
      ["--import", "tsx", resolve(import.meta.dirname, "../../src/bin/tidings.ts"), "serve"],
      {
        env: { ...process.env, TIDINGS_PORT: String(port), TIDINGS_JWT_SECRET: SECRET, TIDINGS_LOG_LEVEL: "Warn" },
        stdio: ["ignore", "pipe", "pipe"]
      }
    )
    const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)))
    try {
      const url = `ws://127.0.0.1:${port}/ws`
      let client: Awaited<ReturnType<typeof connectRaw>> | undefined
      const deadline = Date.now() + 20_000
      while (!client) {
        client = await connectRaw(url, { protocols: ["tidings.agent.v2.json"] }).catch(() => undefined)
        if (!client) {
          if (Date.now() > deadline) throw new Error("server did not start")
          await new Promise((r) => setTimeout(r, 100))
        }
      }
      client.send({ type: "authenticate", token: await sign({ sub: "ops" }) })
      await client.next((f) => f.type === "welcome")
      child.kill("SIGTERM")
      const goaway = await client.next((f) => f.type === "goaway")
      expect(goaway).toMatchObject({ reason: "shutdown" })
      expect((await client.closed).code).toBe(1001)
      expect(await exited).toBe(0)
    } finally {
      child.kill("SIGKILL")
    }
  }, 60_000)
})
