/**
 * Three tidings node processes share one private broker (Redis, then NATS JetStream). 300 typed clients spread
 * over them, each subscribed to two of three shared channels and to its own personal channel; an HTTP publisher
 * writes 30,000 events; when half are acknowledged, one node is killed with SIGKILL. Its clients reconnect to
 * the other nodes and resume from their positions. At the end every client must hold every event of its
 * channels exactly once and in order: the test prints lost, duplicated and out-of-order counts (all 0), and
 * the failover and publishing figures.
 *
 * Load and pacing (2-core CI machine, three nodes + broker + this process): 3 shared channels × 1,000 events,
 * each delivered to 200 clients, and 300 personal channels × 90 events, in batches of 10 events per request
 * (Idempotency-Key per batch), released at 1,500 events/s with at most 8 requests in flight: about 20 s of
 * publishing and ~630,000 deliveries per broker. All clients share 127.0.0.1, so the per-IP connection-attempt
 * limit is lifted for the nodes (as the bench does); every other limit is the default.
 */
import { randomUUID } from "node:crypto"
import { afterAll, describe, expect, it } from "vitest"
import { sign } from "../server/support/testServer.ts"
import { type Broker, brokerBinary, brokerKinds, startBroker } from "./support/brokers.ts"
import { cpuSeconds, killAll, type NodeProcess, sleep, spawnNode } from "./support/cluster.ts"
import { Fleet, percentile } from "./support/fleet.ts"
import { interleave, Publisher } from "./support/publisher.ts"

const SECRET = "test-secret-0123456789-abcdefghij"
const API_KEY = "cluster-test-api-key"
const NODES = 3
const CLIENTS = 300
const SHARED_CHANNELS = 3
const SHARED_EVENTS = 1_000
const PERSONAL_EVENTS = 90
const BATCH = 10
const EVENTS_PER_SECOND = 1_500
const IN_FLIGHT = 8

const shared = (k: number) => `shared:${k}`
const personal = (i: number) => `me:${i}`
const channelsOf = (i: number) => [shared(i % SHARED_CHANNELS), shared((i + 1) % SHARED_CHANNELS), personal(i)]
const expected = (channel: string) => (channel.startsWith("shared:") ? SHARED_EVENTS : PERSONAL_EVENTS)

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

for (const kind of brokerKinds) {
  const binary = brokerBinary(kind, `Multi-node cluster (${kind})`)
  if (binary === undefined) {
    describe.skip(`multi-node cluster over ${kind} (${kind}-server not installed)`, () => {
      it("skipped", () => {})
    })
    continue
  }

  describe(`multi-node cluster over ${kind}`, () => {
    let broker: Broker | undefined
    let fleet: Fleet | undefined
    const nodes: Array<NodeProcess> = []

    afterAll(async () => {
      fleet?.close()
      await killAll()
      await broker?.close()
    })

    it("300 clients on 3 nodes, 30,000 events, one node SIGKILLed midway: nothing lost, duplicated or reordered", async () => {
      const t0 = performance.now()
      broker = await startBroker(kind, binary)
      const env = {
        ...broker.env("multinode"),
        TIDINGS_JWT_SECRET: SECRET,
        TIDINGS_API_KEY: API_KEY,
        TIDINGS_CONNECTION_ATTEMPTS_PER_SECOND: "100000"
      }
      nodes.push(...(await Promise.all(Array.from({ length: NODES }, (_, k) => spawnNode({ name: `node ${k}`, env })))))
      const nodesUp = performance.now()

      const tokens = new Map<number, Promise<string>>()
      const token = (i: number) => {
        let t = tokens.get(i)
        if (t === undefined) tokens.set(i, (t = sign({ sub: `u${i}`, channels: ["shared:*", personal(i)] })))
        return t
      }
      fleet = new Fleet({ urls: nodes.map((n) => n.url), clients: CLIENTS, channelsOf, expected, token })
      await fleet.ready()
      const clientsUp = performance.now()

      const counts = new Map<string, number>()
      for (let k = 0; k < SHARED_CHANNELS; k++) counts.set(shared(k), SHARED_EVENTS)
      for (let i = 0; i < CLIENTS; i++) counts.set(personal(i), PERSONAL_EVENTS)
      const total = [...counts.values()].reduce((a, b) => a + b, 0)
      expect(total).toBe(30_000)

      const victim = nodes[NODES - 1]!
      const onVictim = fleet.members.filter((m) => m.connectedTo === victim.url)
      let killedAt: number | undefined
      let victimCpuAtKill = 0
      const cpuBefore = process.cpuUsage()
      const nodesCpuBefore = nodes.map((n) => cpuSeconds(n.pid) ?? 0)
      const publisher = new Publisher({
        nodes: nodes.map((n) => n.http),
        apiKey: API_KEY,
        runId: randomUUID(),
        eventsPerSecond: EVENTS_PER_SECOND,
        inFlight: IN_FLIGHT
      })
      const published = publisher.run(interleave(counts, BATCH), (acked) => {
        if (killedAt === undefined && acked >= total / 2) {
          killedAt = performance.now()
          victimCpuAtKill = cpuSeconds(victim.pid) ?? 0
          void victim.kill("SIGKILL")
        }
      })
      await published
      const publishedAt = performance.now()
      const victimCpu = victimCpuAtKill
      await victim.exited

      const deadline = Date.now() + 30_000
      while (!fleet.complete() && Date.now() < deadline) await sleep(100)
      const deliveredAt = performance.now()
      await sleep(500) // late duplicates, if any, would arrive now
      const totals = fleet.totals()
      const cpu = process.cpuUsage(cpuBefore)
      const testCpu = (cpu.user + cpu.system) / 1e6
      const nodesCpu = nodes.map((n, k) => (n === victim ? victimCpu : (cpuSeconds(n.pid) ?? 0)) - nodesCpuBefore[k]!)

      const failedOver = onVictim.filter((m) => m.connectedTo !== undefined && m.connectedTo !== victim.url)
      const outages = onVictim.flatMap((m) => m.outages)
      const survivors = nodes.filter((n) => n !== victim)
      const spread = survivors.map((n) => fleet!.members.filter((m) => m.connectedTo === n.url).length)
      const publishFailures = publisher.failures.length
      const lines = [
        `multi-node over ${kind}: ${NODES} nodes, ${CLIENTS} clients, ${total} events (${EVENTS_PER_SECOND}/s, batches of ${BATCH})`,
        `  broker + nodes up ${seconds(nodesUp - t0)}, clients subscribed ${seconds(clientsUp - nodesUp)}, ` +
          `published in ${seconds(publishedAt - clientsUp)}, all delivered ${seconds(deliveredAt - clientsUp)} after the first publish`,
        `  node ${NODES - 1} SIGKILLed at ${seconds((killedAt ?? 0) - clientsUp)} (${onVictim.length} clients on it); ` +
          `${failedOver.length} reconnected elsewhere (now ${spread.join(" + ")} on the survivors); ` +
          `outage p50 ${Math.round(percentile(outages, 0.5))} ms, max ${Math.round(percentile(outages, 1))} ms`,
        `  publisher: ${publisher.requests} requests, ${publishFailures} failed attempts retried ` +
          `(${publisher.failures.filter((f) => f.status === 0).length} connection errors, ` +
          `${publisher.failures.filter((f) => f.status === 503).length} × 503), misplaced acks ${publisher.misplacedAcks}`,
        `  deliveries expected ${totals.expected}, received ${totals.received}: ` +
          `LOST ${totals.lost}, DUPLICATED ${totals.duplicated}, OUT-OF-ORDER ${totals.outOfOrder}, ` +
          `misplaced ${totals.misplaced}, resets ${totals.resets}, client issues ${totals.issues}`,
        `  CPU from the first publish to the end: this process (clients + publisher) ${testCpu.toFixed(1)} s, ` +
          `nodes ${nodesCpu.map((c) => c.toFixed(1)).join(" / ")} s (node ${NODES - 1} until killed)`
      ]
      console.log(lines.join("\n"))
      if (fleet.issues.length > 0) console.log(fleet.issues.slice(0, 10).join("\n"))
      if (totals.lost + totals.duplicated + totals.outOfOrder + totals.misplaced > 0) {
        for (const node of nodes) console.log(`--- ${node.name} output\n${node.output()}`)
      }

      expect(onVictim.length).toBeGreaterThan(0)
      expect(failedOver.length).toBe(onVictim.length)
      expect(publisher.acked).toBe(total)
      expect(publisher.misplacedAcks).toBe(0)
      expect({
        lost: totals.lost,
        duplicated: totals.duplicated,
        outOfOrder: totals.outOfOrder,
        misplaced: totals.misplaced,
        resets: totals.resets,
        issues: totals.issues
      }).toEqual({ lost: 0, duplicated: 0, outOfOrder: 0, misplaced: 0, resets: 0, issues: 0 })
      for (const node of survivors) expect(node.running(), `${node.name} still running`).toBe(true)
    }, 120_000)
  })
}
