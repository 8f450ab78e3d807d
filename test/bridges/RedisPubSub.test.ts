/**
 * The Redis pub/sub bridge in a gateway (src/bridges/RedisPubSubBridge.ts): an unchanged publisher script of the
 * usual kind (examples/bridges/automation-publisher.sh: `redis-cli PUBLISH app:out:<clientId> <json>`) reaches a
 * tidings WebSocket client as typed events of `client:<clientId>`, in order; a message that is not JSON, one whose
 * data violates the protocol's schema and one with an unknown event are dead-lettered to a Redis stream with the
 * reason, counted in /metrics, and never reach the client. /readyz says when the bridge's Redis is gone, and the
 * bridge subscribes again when it is back. A bad configuration file is refused at start with one clear line.
 */
import { execFile } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import * as BridgeConfig from "../../src/bridges/BridgeConfig.ts"
import * as Bridges from "../../src/bridges/Bridges.ts"
import * as Server from "../../src/server/Server.ts"
import * as Memory from "../../src/transports/Memory.ts"
import { CLI_SCRIPT, runToExit } from "../cluster/support/cluster.ts"
import { ChatProtocol } from "../server/support/chatProtocol.ts"
import { connectRaw } from "../server/support/rawClient.ts"
import { chatHandlers, SECRET, sign } from "../server/support/testServer.ts"
import { type RedisServer, startRedisServer } from "../support/redisServer.ts"
import { requireBinary } from "../support/requireBinary.ts"

/** Polls an async `check` every 50 ms until it holds or `timeoutMs` passes. */
const untilAsync = async (check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return true
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return false
}

const exec = promisify(execFile)
const PUBLISHER = new URL("../../examples/bridges/automation-publisher.sh", import.meta.url).pathname
const binary = requireBinary("redis-server", "Redis pub/sub bridge")

const metric = async (http: string, name: string): Promise<number> => {
  const text = await (await fetch(`${http}/metrics`)).text()
  const line = text.split("\n").find((l) => l.startsWith(`${name}{bridge="automation"}`))
  return line === undefined ? 0 : Number(line.split(" ").at(-1))
}

if (binary === undefined) {
  describe.skip("Redis pub/sub bridge (redis-server not installed)", () => {
    it("skipped", () => {})
  })
} else {
  describe("Redis pub/sub bridge", () => {
    let redis: RedisServer | undefined
    let close: (() => Promise<void>) | undefined

    afterAll(async () => {
      await close?.()
      await redis?.dispose()
    })

    it("an unchanged publisher reaches a client as typed events; bad messages are dead-lettered", async () => {
      redis = await startRedisServer(binary)
      const config = await Effect.runPromise(
        BridgeConfig.parse({
          bridges: [
            {
              kind: "redis-pubsub",
              name: "automation",
              url: redis.url,
              patterns: ["app:out:*"],
              channel: "client:{1}",
              event: { field: "type" },
              data: { field: "data" }
            }
          ]
        })
      )
      const layer = Server.layer({
        protocol: ChatProtocol,
        handlers: chatHandlers,
        port: 0,
        auth: { secret: SECRET }
      }).pipe(Layer.provide(Bridges.layer(ChatProtocol, config)), Layer.provide(Memory.layer()))
      const scope = await Effect.runPromise(Scope.make())
      close = () => Effect.runPromise(Scope.close(scope, Exit.void))
      const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
      const server = Context.get(context, Server.TidingsServer)
      const http = `http://127.0.0.1:${server.port}`
      expect(await untilAsync(async () => (await fetch(`${http}/readyz`)).status === 200, 5000)).toBe(true)

      const client = await connectRaw(server.url, { protocols: ["tidings.chat.v2.json"] })
      client.send({ type: "authenticate", token: await sign({ sub: "ann", channels: ["client:*"] }) })
      await client.next((f) => f.type === "welcome")
      client.send({ type: "subscribe", channel: "client:c1" })
      await client.next((f) => f.type === "subscribed")

      await exec(PUBLISHER, [String(redis.port), "c1", "5"])
      for (const bad of ["not json", '{"type":"said","data":{"from":1}}', '{"type":"nope","data":{}}']) {
        await redis.command("PUBLISH", "app:out:c1", bad)
      }
      await exec(PUBLISHER, [String(redis.port), "c1", "2"])
      await client.next((f) => f.type === "event" && f.event === "tick" && (f.data as { n: number }).n === 2, 10_000)
      const events = client.events("client:c1").map((e) => `${e.event} ${JSON.stringify(e.data)}`)
      const steps = (n: number) => Array.from({ length: n }, (_, i) => `said {"from":"engine","body":"step ${i + 1}"}`)
      expect(events).toEqual([...steps(5), 'tick {"n":5}', ...steps(2), 'tick {"n":2}'])
      expect(client.events("client:c1").map((e) => e.offset)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9])

      const dead = (await redis.command("XRANGE", "tidings:dead-letters:automation", "-", "+")) as Array<
        [string, Array<string>]
      >
      const reasons = dead.map(([, fields]) => fields[fields.indexOf("reason") + 1])
      expect(reasons).toHaveLength(3)
      expect(reasons[0]).toContain("not JSON")
      expect(reasons[1]).toContain("not a valid said event")
      expect(reasons[2]).toContain("nope")
      expect(dead[0]![1]).toContain("app:out:c1")
      expect(await metric(http, "tidings_bridge_dead_lettered_total")).toBe(3)
      expect(await metric(http, "tidings_bridge_appended_total")).toBe(9)
      expect(await metric(http, "tidings_bridge_connected")).toBe(1)

      // the bridge's Redis goes away: not ready, with the reason; back: ready, and subscribed again
      await redis.kill()
      expect(await untilAsync(async () => (await fetch(`${http}/readyz`)).status === 503, 10_000)).toBe(true)
      const body = (await (await fetch(`${http}/readyz`)).json()) as { bridges: string }
      expect(body.bridges).toContain("automation")
      await redis.restart()
      expect(await untilAsync(async () => (await fetch(`${http}/readyz`)).status === 200, 15_000)).toBe(true)
      await exec(PUBLISHER, [String(redis.port), "c1", "1"])
      await client.next((f) => f.type === "event" && f.offset === 11, 10_000)
      client.close()
    }, 60_000)

    it("a bad configuration file is refused at start with one line per problem, naming its place", async () => {
      const dir = mkdtempSync(join(tmpdir(), "tidings-bridges-"))
      const file = join(dir, "bridges.json")
      writeFileSync(file, JSON.stringify({ bridges: [{ kind: "redis-pubsub", name: "a b", url: "redis://x" }] }))
      const result = await runToExit({
        name: "tidings bridge",
        script: CLI_SCRIPT,
        args: ["bridge", "--bridges", file, "--port", "0"],
        timeoutMs: 30_000
      })
      expect(result.code).toBe(1)
      expect(result.stderr).toContain(file)
      const problems = result.stderr.trim().split("\n").slice(1)
      expect(problems).toEqual([
        expect.stringMatching(/^ {2}bridges\[0\]\.name: Expected a string matching/),
        "  bridges[0].channel: Missing key",
        "  bridges[0].event: Missing key",
        "  bridges[0].patterns: Missing key"
      ])
    }, 40_000)
  })
}
