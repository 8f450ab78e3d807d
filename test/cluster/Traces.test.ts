/**
 * Traces across processes: a gateway and a worker of the real CLI (`tidings serve --role`, PostgreSQL runs, Redis)
 * with TIDINGS_OTLP_URL pointing at a small OTLP/HTTP receiver in this test. One `start` command must give one
 * trace holding the gateway's command span (a child of its connection's span) and the worker's spans of the run
 * it started (Effect Cluster carries the span in its message), among them the run's publishes; the gateway's
 * fan-out of the run's events to the subscribed client is traced too. Prints each service's span names in that
 * trace. Without TIDINGS_OTLP_URL nothing is exported (the receiver stays empty for the other processes' tests).
 */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, describe, expect, it } from "vitest"
import { command, connectAs } from "../runs/support/scenario.ts"
import { SECRET } from "../server/support/testServer.ts"
import { freePort } from "../support/freePort.ts"
import { type PostgresServer, requirePostgres, startPostgresServer } from "../support/postgresServer.ts"
import { type Broker, brokerBinary, startBroker } from "./support/brokers.ts"
import { CLI_SCRIPT, killAll, sleep, spawnNode } from "./support/cluster.ts"

interface ReceivedSpan {
  readonly service: string
  readonly name: string
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string
  readonly attributes: Record<string, unknown>
}

type OtlpValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number }
type OtlpAttribute = { key: string; value: OtlpValue }
interface OtlpBody {
  resourceSpans?: Array<{
    resource?: { attributes?: Array<OtlpAttribute> }
    scopeSpans?: Array<{
      spans?: Array<{
        name: string
        traceId: string
        spanId: string
        parentSpanId?: string
        attributes?: Array<OtlpAttribute>
      }>
    }>
  }>
}

const attributeValue = (v: OtlpValue): unknown => v.stringValue ?? v.intValue ?? v.boolValue ?? v.doubleValue
const attributesOf = (list: Array<OtlpAttribute> | undefined) =>
  Object.fromEntries((list ?? []).map((a) => [a.key, attributeValue(a.value)]))

/** An OTLP/HTTP JSON receiver: every span POSTed to /v1/traces. */
const startReceiver = async () => {
  const spans: Array<ReceivedSpan> = []
  const server: Server = createServer((req, res) => {
    let body = ""
    req.on("data", (chunk: Buffer) => (body += chunk.toString()))
    req.on("end", () => {
      if (req.url === "/v1/traces") {
        const parsed = JSON.parse(body) as OtlpBody
        for (const resource of parsed.resourceSpans ?? []) {
          const service = String(attributesOf(resource.resource?.attributes)["service.name"])
          for (const scope of resource.scopeSpans ?? []) {
            for (const span of scope.spans ?? []) {
              spans.push({
                service,
                name: span.name,
                traceId: span.traceId,
                spanId: span.spanId,
                parentSpanId: span.parentSpanId ?? "",
                attributes: attributesOf(span.attributes)
              })
            }
          }
        }
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return { spans, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() }
}

const postgres = requirePostgres("Traces across processes")
const redis = brokerBinary("redis", "Traces across processes")

if (postgres === undefined || redis === undefined) {
  describe.skip("traces across processes (PostgreSQL or redis-server not installed)", () => {
    it("skipped", () => {})
  })
} else {
  describe("traces across processes", () => {
    let broker: Broker | undefined
    let database: PostgresServer | undefined
    let receiver: Awaited<ReturnType<typeof startReceiver>> | undefined

    afterAll(async () => {
      await killAll()
      receiver?.close()
      await broker?.close()
      await database?.dispose()
    })

    it("one start command: the gateway's command and connection spans and the worker's run in one trace", async () => {
      ;[broker, database, receiver] = await Promise.all([
        startBroker("redis", redis),
        startPostgresServer(postgres),
        startReceiver()
      ])
      const env = {
        ...broker.env("traces"),
        TIDINGS_JWT_SECRET: SECRET,
        TIDINGS_DATABASE_URL: database.url,
        TIDINGS_AGENT_BEAT_MS: "20",
        TIDINGS_OTLP_URL: receiver.url
      }
      await spawnNode({
        name: "worker",
        script: CLI_SCRIPT,
        args: ["serve", "--role", "worker", "--runner-port", String(await freePort())],
        env
      })
      const gateway = await spawnNode({
        name: "gateway",
        script: CLI_SCRIPT,
        args: ["serve", "--role", "gateway"],
        env
      })

      const client = await connectAs(gateway.url, "ann", SECRET)
      const started = await command(client, "start", { query: "traced", mode: "research" })
      expect(started).toMatchObject({ type: "reply", ok: true })
      const { channel } = started.result as { channel: string }
      client.send({ type: "subscribe", channel, fromStart: true })
      await client.next((f) => f.type === "event" && f.channel === channel && f.event === "checkpoint_required")
      client.close() // ends the connection's span

      const spans = receiver.spans
      const commandSpan = () => spans.find((s) => s.service === "tidings-gateway" && s.name === "tidings.command start")
      const deadline = Date.now() + 15_000
      const complete = () => {
        const cmd = commandSpan()
        return (
          cmd !== undefined &&
          spans.some((s) => s.name === "tidings.connection" && s.spanId === cmd.parentSpanId) &&
          spans.some((s) => s.service === "tidings-worker" && s.traceId === cmd.traceId && s.name === "tidings.publish")
        )
      }
      while (!complete() && Date.now() < deadline) await sleep(100)

      const cmd = commandSpan()
      const trace = spans.filter((s) => s.traceId === cmd?.traceId)
      const byService = (service: string) => [...new Set(trace.filter((s) => s.service === service).map((s) => s.name))]
      process.stdout.write(
        `\ntrace of one start command: gateway ${JSON.stringify(byService("tidings-gateway"))}; worker ${JSON.stringify(byService("tidings-worker"))}; fan-out spans on the gateway for its channel: ${spans.filter((s) => s.name === "tidings.fanout" && s.attributes["tidings.channel"] === channel).length}\n`
      )
      expect(cmd, "the gateway's command span").toBeDefined()
      expect(cmd!.attributes["tidings.command"]).toBe("start")
      const connection = spans.find((s) => s.name === "tidings.connection" && s.spanId === cmd!.parentSpanId)
      expect(connection?.attributes["tidings.user"]).toBe("ann")
      // the run on the worker continues the command's trace, publishes included
      expect(byService("tidings-worker").length).toBeGreaterThan(1)
      expect(byService("tidings-worker")).toContain("tidings.publish")
      expect(
        trace
          .filter((s) => s.service === "tidings-worker" && s.name === "tidings.publish")
          .map((s) => s.attributes["tidings.channel"])
      ).toContain(channel)
      // the gateway fanned the run's events out to the client
      expect(
        spans.some(
          (s) =>
            s.service === "tidings-gateway" &&
            s.name === "tidings.fanout" &&
            s.attributes["tidings.channel"] === channel
        )
      ).toBe(true)
    }, 60_000)
  })
}
