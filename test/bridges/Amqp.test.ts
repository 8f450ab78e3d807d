/**
 * The RabbitMQ bridge and AMQP-bound commands (src/bridges/AmqpBridge.ts, AmqpCommands.ts) against a private
 * RabbitMQ node (test/support/rabbitServer.ts) and a private Redis:
 *
 * - 20,000 progress messages for 200 requests, published by a plain AMQP publisher (messageId, routing key
 *   `progress.<requestId>`), go through a bridge running in its own process (support/bridgeNode.ts) that is killed
 *   with SIGKILL twice mid-stream and started again; read back from Redis through the transport, every request's
 *   channel holds each of its messages exactly once, in publish order.
 * - In a gateway (bridge in-process): a message that is not JSON and one that violates the event's schema go to the
 *   dead-letter queue, original bytes and the reason in headers, acknowledged and counted in /metrics.
 * - A WebSocket client's `cancel` reaches a plain AMQP consumer (fire-and-forget, the caller in headers), `status`
 *   gets the consumer's answer (reply mode, typed result and typed error), silence and unroutable commands are
 *   `unavailable`, and a binding whose fire-and-forget result does not fit is refused at construction.
 * - The broker restarts under the in-process bridge with messages in flight: /readyz says so while it is gone, the
 *   bridge reconnects by itself, and every message still arrives once, in order.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { type ConfirmChannel, connect } from "amqplib"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as AmqpCommands from "../../src/bridges/AmqpCommands.ts"
import * as BridgeConfig from "../../src/bridges/BridgeConfig.ts"
import * as Bridges from "../../src/bridges/Bridges.ts"
import * as Server from "../../src/server/Server.ts"
import * as Memory from "../../src/transports/Memory.ts"
import * as Redis from "../../src/transports/Redis.ts"
import { Transport, type TransportShape } from "../../src/transports/Transport.ts"
import { connectRaw, type RawClient } from "../server/support/rawClient.ts"
import { SECRET, sign } from "../server/support/testServer.ts"
import { type RabbitServer, requireRabbit, startRabbitServer } from "../support/rabbitServer.ts"
import { type RedisServer, startRedisServer } from "../support/redisServer.ts"
import { requireBinary } from "../support/requireBinary.ts"
import { ProgressProtocol } from "./support/progressProtocol.ts"

const SUITE = "AMQP bridge"
const rabbitScript = requireRabbit(SUITE)
const redisBinary = requireBinary("redis-server", SUITE)
const BRIDGE_NODE = fileURLToPath(new URL("./support/bridgeNode.ts", import.meta.url))
const ROOT = fileURLToPath(new URL("../../", import.meta.url))

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Polls `check` every 25 ms until it holds or `timeoutMs` passes; throws naming `what` if it never does. */
const waitFor = async (what: string, check: () => boolean | Promise<boolean>, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await Promise.resolve(check()).catch(() => false)) return
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`)
    await sleep(25)
  }
}

interface Counts {
  readonly connected: boolean
  readonly reason: string | null
  readonly appended: number
  readonly duplicate: number
  readonly dead_lettered: number
  readonly append_failed: number
}

interface BridgeProcess {
  readonly latest: () => Counts | undefined
  readonly output: () => string
  readonly kill: () => Promise<void>
}

const live = new Set<ChildProcess>()

/** The bridge of `file` in a process of its own (support/bridgeNode.ts), reporting its counters every 50 ms. */
const spawnBridge = (file: string, redisUrl: string, keyPrefix: string): BridgeProcess => {
  const child = spawn(process.execPath, ["--import", "tsx", BRIDGE_NODE], {
    cwd: ROOT,
    env: { ...process.env, BRIDGES_FILE: file, REDIS_URL: redisUrl, REDIS_KEY_PREFIX: keyPrefix, STATS_EVERY_MS: "50" },
    stdio: ["ignore", "pipe", "pipe"]
  })
  live.add(child)
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  void exited.then(() => live.delete(child))
  let latest: Counts | undefined
  let output = ""
  let partial = ""
  child.stdout?.on("data", (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split("\n")
    partial = lines.pop() ?? ""
    for (const line of lines) {
      if (line.startsWith('{"stats"')) latest = (JSON.parse(line) as { stats: Array<Counts> }).stats[0]
      else output = (output + line + "\n").slice(-8000)
    }
  })
  child.stderr?.on("data", (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000)
  })
  return {
    latest: () => latest,
    output: () => output,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      await exited
    }
  }
}

/** Every entry of a channel, oldest first, as the `seq` of its data. */
const seqsOf = async (transport: TransportShape, channel: string): Promise<Array<number>> => {
  const seqs: Array<number> = []
  let since: { epoch: string; offset: number } | undefined
  for (;;) {
    const page = await Effect.runPromise(transport.read(channel, since, 1000))
    for (const entry of page.entries) seqs.push((JSON.parse(entry.data) as { seq: number }).seq)
    if (page.entries.length === 0) return seqs
    const last = page.entries.at(-1)!
    since = { epoch: last.epoch, offset: last.offset }
  }
}

/** Lost, duplicated and out-of-order messages of channels that should each hold 0…perChannel-1 in order. */
const audit = (channels: ReadonlyArray<ReadonlyArray<number>>, perChannel: number) => {
  let lost = 0
  let duplicated = 0
  let outOfOrder = 0
  for (const seqs of channels) {
    const distinct = new Set(seqs)
    for (let seq = 0; seq < perChannel; seq++) if (!distinct.has(seq)) lost++
    duplicated += seqs.length - distinct.size
    for (let i = 1; i < seqs.length; i++) if (seqs[i]! < seqs[i - 1]!) outOfOrder++
  }
  return { lost, duplicated, outOfOrder }
}

const progress = (requestId: string, seq: number) =>
  Buffer.from(JSON.stringify({ requestId, type: "progress", seq, percent: seq / 2 }))

/** Publishes with confirms, a window of `window` unconfirmed at most. */
const publishAll = async (
  channel: ConfirmChannel,
  exchange: string,
  messages: ReadonlyArray<{ routingKey: string; body: Buffer; messageId: string }>,
  window = 2000
) => {
  for (let i = 0; i < messages.length; i++) {
    const { routingKey, body, messageId } = messages[i]!
    if (!channel.publish(exchange, routingKey, body, { messageId, persistent: true })) {
      await new Promise((resolve) => channel.once("drain", resolve))
    }
    if (i % window === window - 1) await channel.waitForConfirms()
  }
  await channel.waitForConfirms()
}

const metric = async (http: string, name: string, bridge: string): Promise<number> => {
  const text = await (await fetch(`${http}/metrics`)).text()
  const line = text.split("\n").find((l) => l.startsWith(`${name}{bridge="${bridge}"}`))
  return line === undefined ? Number.NaN : Number(line.split(" ").at(-1))
}

if (rabbitScript === undefined || redisBinary === undefined) {
  describe.skip(`${SUITE} (rabbitmq-server or redis-server not installed)`, () => {
    it("skipped", () => {})
  })
} else {
  describe(SUITE, () => {
    let rabbit: RabbitServer
    let redis: RedisServer
    const dir = mkdtempSync(join(tmpdir(), "tidings-amqp-test-"))

    beforeAll(async () => {
      ;[rabbit, redis] = await Promise.all([startRabbitServer(rabbitScript), startRedisServer(redisBinary)])
    }, 60_000)

    afterAll(async () => {
      for (const child of live) child.kill("SIGKILL")
      await redis?.dispose()
      if (rabbit !== undefined) {
        await rabbit.dispose()
        // the node, its epmd and the VM's helpers are all gone
        expect(rabbit.leftovers()).toEqual([])
      }
      rmSync(dir, { recursive: true, force: true })
    }, 40_000)

    it("20,000 messages for 200 requests reach their channels exactly once and in order across two SIGKILLs of the bridge", async () => {
      const requests = 200
      const perRequest = 100
      const keyPrefix = "kills:"
      const file = join(dir, "kills.json")
      writeFileSync(
        file,
        JSON.stringify({
          bridges: [
            {
              kind: "amqp",
              name: "workers",
              url: rabbit.url,
              exchange: "work",
              queue: "tidings-progress",
              bindings: ["progress.*"],
              channel: "request:{requestId}",
              event: { field: "type" }
            }
          ]
        })
      )
      const scope = await Effect.runPromise(Scope.make())
      const connection = await connect(rabbit.url)
      try {
        const transport = await Effect.runPromise(Scope.provide(Redis.make({ url: redis.url, keyPrefix }), scope))
        const progressOf = (bridge: BridgeProcess) =>
          (bridge.latest()?.appended ?? 0) + (bridge.latest()?.duplicate ?? 0)

        let bridge = spawnBridge(file, redis.url, keyPrefix)
        await waitFor("the bridge consumes", () => bridge.latest()?.connected === true, 30_000)

        const messages = Array.from({ length: requests * perRequest }, (_, i) => {
          const requestId = `req-${i % requests}`
          const seq = Math.floor(i / requests)
          return { routingKey: `progress.${requestId}`, body: progress(requestId, seq), messageId: `p-${i}` }
        })
        const channel = await connection.createConfirmChannel()
        const started = Date.now()
        const published = publishAll(channel, "work", messages)

        const stats: Array<Counts> = []
        for (const killAfter of [4000, 4000]) {
          const current = bridge
          await waitFor(`the bridge takes ${killAfter} messages`, () => progressOf(current) >= killAfter, 30_000)
          stats.push(current.latest()!)
          await current.kill()
          bridge = spawnBridge(file, redis.url, keyPrefix)
        }
        await published
        const publishedMs = Date.now() - started

        const tops = async () => {
          let total = 0
          for (let r = 0; r < requests; r++) {
            total += (await Effect.runPromise(transport.top(`request:req-${r}`))).offset
          }
          return total
        }
        await waitFor("every message is in the log", async () => (await tops()) >= requests * perRequest, 45_000)
        // nothing left in the queue: every message was acknowledged
        await waitFor(
          "the queue is empty",
          async () => (await channel.checkQueue("tidings-progress")).messageCount === 0,
          10_000
        )
        await sleep(300)
        stats.push(bridge.latest()!)
        const channels = await Promise.all(
          Array.from({ length: requests }, (_, r) => seqsOf(transport, `request:req-${r}`))
        )
        const result = audit(channels, perRequest)
        console.log(
          `AMQP bridge, ${requests * perRequest} messages over ${requests} requests, bridge SIGKILLed twice: ` +
            `lost ${result.lost}, duplicated ${result.duplicated}, out of order ${result.outOfOrder}; ` +
            `published in ${publishedMs} ms, all in the log after ${Date.now() - started} ms; per bridge process ` +
            "(as last reported before its kill) " +
            stats.map((s) => `appended ${s.appended} duplicate ${s.duplicate}`).join(", ")
        )
        expect(result).toEqual({ lost: 0, duplicated: 0, outOfOrder: 0 })
        expect(channels.every((seqs) => seqs.length === perRequest)).toBe(true)
        expect(stats.reduce((sum, s) => sum + s.dead_lettered + s.append_failed, 0)).toBe(0)
        await bridge.kill()
      } catch (error) {
        for (const child of live) child.kill("SIGKILL")
        throw error
      } finally {
        await connection.close().catch(() => undefined)
        await Effect.runPromise(Scope.close(scope, Exit.void))
      }
    }, 80_000)

    describe("in a gateway", () => {
      let close: (() => Promise<void>) | undefined
      let http = ""
      let wsUrl = ""
      let transport: TransportShape
      let client: RawClient
      const commands: Array<{ routingKey: string; body: string; headers: Record<string, unknown> }> = []

      beforeAll(async () => {
        // a plain AMQP consumer of the commands: records cancels, answers status (ignores "slow")
        const consumer = await connect(rabbit.url)
        const ch = await consumer.createChannel()
        await ch.assertExchange("commands", "topic", { durable: true })
        await ch.assertQueue("workers.commands", { durable: true })
        await ch.bindQueue("workers.commands", "commands", "cancel.*")
        await ch.bindQueue("workers.commands", "commands", "status.*")
        await ch.consume("workers.commands", (message) => {
          if (message === null) return
          const body = message.content.toString()
          commands.push({ routingKey: message.fields.routingKey, body, headers: message.properties.headers ?? {} })
          ch.ack(message)
          const { requestId } = JSON.parse(body) as { requestId: string }
          if (message.properties.replyTo === undefined || requestId === "slow") return
          const answer =
            requestId === "missing"
              ? { ok: false, error: { _tag: "NotFound", requestId } }
              : { ok: true, result: { requestId, state: "running" } }
          ch.sendToQueue(message.properties.replyTo, Buffer.from(JSON.stringify(answer)), {
            correlationId: message.properties.correlationId
          })
        })

        const config = await Effect.runPromise(
          BridgeConfig.parse({
            bridges: [
              {
                kind: "amqp",
                name: "gateway-workers",
                url: rabbit.url,
                exchange: "gateway-work",
                queue: "gateway-progress",
                bindings: ["progress.#"],
                prefetch: 200,
                channel: "request:{requestId}",
                event: { field: "type" }
              }
            ]
          })
        )
        const handlers = {
          ...AmqpCommands.handlers(ProgressProtocol, {
            url: rabbit.url,
            exchange: "commands",
            commands: { cancel: { routingKey: "cancel.{requestId}" } }
          }),
          ...AmqpCommands.handlers(ProgressProtocol, {
            url: rabbit.url,
            exchange: "commands",
            mode: "reply",
            replyTimeoutMs: 1000,
            commands: { status: { routingKey: "status.{requestId}" } }
          })
        }
        const layer = Server.layer({
          protocol: ProgressProtocol,
          handlers,
          port: 0,
          auth: { secret: SECRET }
        }).pipe(
          Layer.provide(Bridges.layer(ProgressProtocol, config)),
          Layer.provide(AmqpCommands.layer),
          Layer.provideMerge(Memory.layer())
        )
        const scope = await Effect.runPromise(Scope.make())
        close = async () => {
          await Effect.runPromise(Scope.close(scope, Exit.void))
          await consumer.close().catch(() => undefined)
        }
        const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
        const server = Context.get(context, Server.TidingsServer)
        transport = Context.get(context, Transport)
        http = `http://127.0.0.1:${server.port}`
        wsUrl = server.url
        await waitFor("the gateway is ready", async () => (await fetch(`${http}/readyz`)).status === 200, 15_000)
        client = await connectRaw(wsUrl, { protocols: ["tidings.progress.v1.json"] })
        client.send({ type: "authenticate", token: await sign({ sub: "alice", channels: ["request:*"] }) })
        await client.next((f) => f.type === "welcome")
      }, 40_000)

      afterAll(async () => {
        client?.close()
        await close?.()
      }, 20_000)

      it("dead-letters a message that is not JSON and one that violates the schema, with the reason, and counts them", async () => {
        const connection = await connect(rabbit.url)
        try {
          const channel = await connection.createConfirmChannel()
          const bad = [
            { routingKey: "progress.req-dl", body: Buffer.from("{not json"), messageId: "bad-1" },
            {
              routingKey: "progress.req-dl",
              body: Buffer.from(JSON.stringify({ requestId: "req-dl", type: "progress", seq: "seven", percent: 1 })),
              messageId: "bad-2"
            }
          ]
          await publishAll(channel, "gateway-work", [
            { routingKey: "progress.req-dl", body: progress("req-dl", 0), messageId: "good-0" },
            ...bad,
            { routingKey: "progress.req-dl", body: progress("req-dl", 1), messageId: "good-1" }
          ])
          await waitFor(
            "both bad messages are counted",
            async () => (await metric(http, "tidings_bridge_dead_lettered_total", "gateway-workers")) === 2,
            10_000
          )
          await waitFor(
            "both good messages are in the log",
            async () => (await seqsOf(transport, "request:req-dl")).length === 2,
            10_000
          )
          expect(await seqsOf(transport, "request:req-dl")).toEqual([0, 1])
          expect(await metric(http, "tidings_bridge_appended_total", "gateway-workers")).toBe(2)
          expect(await metric(http, "tidings_bridge_connected", "gateway-workers")).toBe(1)

          const letters = []
          for (let i = 0; i < 2; i++) {
            const letter = await channel.get("gateway-progress.dead-letters", { noAck: true })
            expect(letter).not.toBe(false)
            if (letter !== false) letters.push(letter)
          }
          expect(letters.map((l) => l.content.toString())).toEqual(bad.map((b) => b.body.toString()))
          expect(letters.map((l) => l.properties.messageId)).toEqual(["bad-1", "bad-2"])
          expect(letters[0]!.properties.headers?.["x-tidings-reason"]).toContain("not JSON")
          expect(letters[1]!.properties.headers?.["x-tidings-reason"]).toMatch(
            /not a valid progress event at data\.seq/
          )
          for (const letter of letters) {
            expect(letter.properties.headers?.["x-tidings-routing-key"]).toBe("progress.req-dl")
            expect(letter.properties.headers?.["x-tidings-bridge"]).toBe("gateway-workers")
          }
          // every message was acknowledged, the bad ones included
          await waitFor(
            "the bridge's queue is empty",
            async () => (await channel.checkQueue("gateway-progress")).messageCount === 0,
            5000
          )
        } finally {
          await connection.close().catch(() => undefined)
        }
      }, 30_000)

      it("sends cancel to a plain AMQP consumer and answers status from its reply; silence is unavailable", async () => {
        client.send({ type: "command", id: "c1", name: "cancel", payload: { requestId: "req-7", reason: "user" } })
        expect(await client.next((f) => f.id === "c1")).toMatchObject({ type: "reply", ok: true, result: {} })
        await waitFor("the consumer has the cancel", () => commands.some((c) => c.routingKey === "cancel.req-7"), 5000)
        const cancel = commands.find((c) => c.routingKey === "cancel.req-7")!
        expect(JSON.parse(cancel.body)).toEqual({ requestId: "req-7", reason: "user" })
        expect(cancel.headers).toMatchObject({
          "x-tidings-user": "alice",
          "x-tidings-command": "cancel",
          "x-tidings-protocol": "progress",
          "x-tidings-version": 1
        })

        client.send({ type: "command", id: "s1", name: "status", payload: { requestId: "req-7" } })
        expect(await client.next((f) => f.id === "s1")).toMatchObject({
          type: "reply",
          ok: true,
          result: { requestId: "req-7", state: "running" }
        })
        client.send({ type: "command", id: "s2", name: "status", payload: { requestId: "missing" } })
        expect(await client.next((f) => f.id === "s2")).toMatchObject({
          type: "reply",
          ok: false,
          error: { _tag: "NotFound", requestId: "missing" }
        })
        // a payload value with a "." would add words to the topic routing key: refused, never published
        client.send({ type: "command", id: "c2", name: "cancel", payload: { requestId: "req-7.admin" } })
        expect(await client.next((f) => f.id === "c2")).toMatchObject({ type: "error", code: "internal" })
        client.send({ type: "command", id: "s3", name: "status", payload: { requestId: "slow" } })
        const silent = await client.next((f) => f.id === "s3", 5000)
        expect(silent).toMatchObject({ type: "error", code: "unavailable", retryAfterMs: 1000 })
        expect(String(silent.message)).toContain("no answer within 1000 ms")
        expect(commands.map((c) => c.routingKey)).toEqual([
          "cancel.req-7",
          "status.req-7",
          "status.missing",
          "status.slow"
        ])
      }, 20_000)

      it("a command no queue takes is unavailable; a fire-and-forget result that does not fit is refused at construction", async () => {
        const unroutable = AmqpCommands.to(
          ProgressProtocol,
          "cancel",
          { routingKey: "cancel.{requestId}" },
          { url: rabbit.url, exchange: "nobody-listens" }
        )
        const exit = await Effect.runPromiseExit(
          unroutable(
            { requestId: "r" },
            {
              user: "alice",
              session: "s",
              connection: "c",
              canRead: () => true,
              publish: () => Effect.die("unused")
            }
          ).pipe(Effect.provide(AmqpCommands.layer))
        )
        expect(Exit.isFailure(exit)).toBe(true)
        expect(JSON.stringify(exit)).toMatch(/CommandUnavailable.*no queue takes routing key cancel\.r/)

        expect(() =>
          AmqpCommands.handlers(ProgressProtocol, {
            url: rabbit.url,
            exchange: "commands",
            commands: { status: { routingKey: "status.{requestId}" } }
          })
        ).toThrow(/fire-and-forget status answers \{\} once the broker has it, which is not a status result/)
        expect(() =>
          AmqpCommands.handlers(ProgressProtocol, {
            url: rabbit.url,
            exchange: "commands",
            commands: { status: { routingKey: "s", result: { requestId: 1 } as never } }
          })
        ).toThrow(/is not a status result/)
      }, 20_000)

      it("reconnects when the broker restarts with messages in flight; every message arrives once, in order", async () => {
        const requests = 20
        const perRequest = 100
        const messages = Array.from({ length: requests * perRequest }, (_, i) => {
          const requestId = `restart-${i % requests}`
          return {
            routingKey: `progress.${requestId}`,
            body: progress(requestId, Math.floor(i / requests)),
            messageId: `r-${i}`
          }
        })
        const first = await connect(rabbit.url)
        await publishAll(await first.createConfirmChannel(), "gateway-work", messages)
        await first.close()
        await waitFor(
          "the bridge is taking them",
          async () => (await metric(http, "tidings_bridge_appended_total", "gateway-workers")) > 100,
          10_000
        )
        const restart = rabbit.restart()
        await waitFor(
          "/readyz says the bridge is down",
          async () => (await fetch(`${http}/readyz`)).status === 503,
          10_000
        )
        const body = (await (await fetch(`${http}/readyz`)).json()) as Record<string, unknown>
        expect(JSON.stringify(body)).toContain("gateway-workers")
        await restart
        await waitFor("the bridge is back", async () => (await fetch(`${http}/readyz`)).status === 200, 20_000)
        const channels = () =>
          Promise.all(Array.from({ length: requests }, (_, r) => seqsOf(transport, `request:restart-${r}`)))
        await waitFor(
          "every message is in the log",
          async () => (await channels()).reduce((sum, seqs) => sum + seqs.length, 0) >= requests * perRequest,
          20_000
        )
        const result = audit(await channels(), perRequest)
        console.log(
          `AMQP bridge, broker restarted under ${requests * perRequest} messages: lost ${result.lost}, ` +
            `duplicated ${result.duplicated}, out of order ${result.outOfOrder}`
        )
        expect(result).toEqual({ lost: 0, duplicated: 0, outOfOrder: 0 })
      }, 45_000)
    })
  })
}
