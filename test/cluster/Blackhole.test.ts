/**
 * `/readyz` while the broker is blackholed, for Redis and NATS: three tidings nodes reach the broker through a TCP
 * proxy (test/support/tcpProxy.ts) that stops forwarding without closing anything, for 3 s, then forwards again.
 * Each node's `/readyz` is asked every 50 ms with a 250 ms timeout throughout. Every probe must be answered in
 * time (readiness comes from state kept in the background, src/server/http/TransportHealth.ts); each node must say 503
 * with the reason during the hole, and 200 again within a second of the broker's return. Prints, per node, how
 * long after the hole began it said 503, the slowest answer, and how long after the return it said 200.
 */
import { afterAll, describe, expect, it } from "vitest"
import { startTcpProxy, type TcpProxy } from "../support/tcpProxy.ts"
import { type Broker, brokerBinary, brokerKinds, startBroker } from "./support/brokers.ts"
import { killAll, type NodeProcess, sleep, spawnNode } from "./support/cluster.ts"

const SECRET = "test-secret-0123456789-abcdefghij"
const PROBE_TIMEOUT_MS = 250
const HOLE_MS = 3000

interface Sample {
  readonly node: number
  readonly at: number
  /** 0 when no answer came within PROBE_TIMEOUT_MS. */
  readonly status: number
  readonly ms: number
  readonly transport?: string
}

const probe = async (node: number, http: string): Promise<Sample> => {
  const from = performance.now()
  try {
    const response = await fetch(`${http}/readyz`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) })
    const body = (await response.json()) as { transport?: string }
    const at = performance.now()
    return {
      node,
      at,
      status: response.status,
      ms: at - from,
      ...(body.transport ? { transport: body.transport } : {})
    }
  } catch {
    const at = performance.now()
    return { node, at, status: 0, ms: at - from }
  }
}

for (const kind of brokerKinds) {
  const binary = brokerBinary(kind, `readiness under a blackholed ${kind}`)
  if (binary === undefined) {
    describe.skip(`readiness under a blackholed ${kind} (${kind} not installed)`, () => {
      it("skipped", () => {})
    })
    continue
  }

  describe(`readiness under a blackholed ${kind}`, () => {
    let broker: Broker | undefined
    let proxy: TcpProxy | undefined

    afterAll(async () => {
      await killAll()
      await proxy?.close()
      await broker?.close()
    })

    it("every node answers /readyz within 250 ms: 503 with the reason in the hole, 200 within 1 s after", async () => {
      broker = await startBroker(kind, binary)
      const port = Number(/:(\d+)\/?$/.exec(broker.url)?.[1])
      proxy = await startTcpProxy({ host: "127.0.0.1", port })
      const env: Record<string, string> = { ...broker.env("blackhole"), TIDINGS_JWT_SECRET: SECRET }
      const urlKey = kind === "redis" ? "REDIS_URL" : "NATS_URL"
      env[urlKey] = env[urlKey]!.replace(`:${port}`, `:${proxy.port}`)
      const nodes: Array<NodeProcess> = await Promise.all([0, 1, 2].map((k) => spawnNode({ name: `node ${k}`, env })))

      const samples: Array<Sample> = []
      let probing = true
      const loops = nodes.map(async (node, k) => {
        while (probing) {
          samples.push(await probe(k, node.http))
          await sleep(50)
        }
      })
      await sleep(500)
      const holeAt = performance.now()
      proxy.blackhole()
      await sleep(HOLE_MS)
      const backAt = performance.now()
      proxy.restore()
      await sleep(1500)
      probing = false
      await Promise.all(loops)

      const report = nodes.map((_, k) => {
        const mine = samples.filter((s) => s.node === k)
        const unready = mine.find((s) => s.at > holeAt && s.at < backAt && s.status === 503)
        const readyAgain = mine.find((s) => s.at > backAt && s.status === 200)
        return {
          node: k,
          unanswered: mine.filter((s) => s.status === 0).length,
          slowestMs: Math.round(Math.max(...mine.map((s) => s.ms))),
          unreadyAfterMs: unready ? Math.round(unready.at - holeAt) : null,
          reason: unready?.transport ?? null,
          readyAgainAfterMs: readyAgain ? Math.round(readyAgain.at - backAt) : null,
          beforeHole: mine.filter((s) => s.at < holeAt).every((s) => s.status === 200)
        }
      })
      process.stdout.write(`\nblackholed ${kind}: ${JSON.stringify(report)}\n`)
      for (const r of report) {
        expect(r.beforeHole, `node ${r.node} ready before the hole`).toBe(true)
        expect(r.unanswered, `node ${r.node}: probes without an answer within ${PROBE_TIMEOUT_MS} ms`).toBe(0)
        expect(r.unreadyAfterMs, `node ${r.node} said 503 during the hole`).not.toBeNull()
        expect(r.reason).toMatch(/did not answer|unreachable/)
        expect(r.readyAgainAfterMs, `node ${r.node} said 200 after the return`).not.toBeNull()
        expect(r.readyAgainAfterMs!).toBeLessThanOrEqual(1000)
      }
    }, 60_000)
  })
}
