/**
 * The broker goes away under a running cluster and comes back, for Redis and for NATS JetStream: two tidings
 * node processes and one in-process node share a private broker, 30 typed clients are connected and
 * subscribed, and an HTTP publisher writes 1,200 events while the broker is stopped for 4 s and started again
 * (same port, same data: Redis saves a snapshot on the way down, NATS keeps its store directory).
 *
 * It shows, and prints with timings, what each party sees:
 * - the HTTP publisher gets 503 `{"error": "unavailable", "retryable": true}` at once (no hang) and succeeds when
 *   it retries after the broker is back (with its Idempotency-Key, so nothing is appended twice);
 * - an in-process publish fails with a retryable TransportError;
 * - `/readyz` answers 503 during the outage and 200 after it, without restarting any node;
 * - connected clients stay connected; delivery stalls and resumes by itself; every acknowledged event reaches
 *   every subscriber exactly once, in order;
 * - a client that connects during the outage is welcomed, its subscribe is refused as `unavailable`, and it
 *   keeps asking until it is live (then replays everything).
 *
 * A second case crashes the broker (SIGKILL) and starts it again at once. Redis, run without persistence, comes
 * back empty: subscribers get `reset {reason: "epoch_changed"}` and offsets restart at 1 under a new epoch (the
 * events before the crash are gone from history). JetStream's file store survives a process crash: no reset,
 * offsets continue.
 */
import { randomUUID } from "node:crypto"
import { Effect, Exit, Option } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import type { ResetNotice } from "../../src/client/node.ts"
import * as ClientNode from "../../src/client/node.ts"
import { ChatProtocol } from "../server/support/chatProtocol.ts"
import { sign } from "../server/support/testServer.ts"
import { type Broker, brokerBinary, brokerKinds, startBroker } from "./support/brokers.ts"
import { killAll, type NodeProcess, type ReadySample, sleep, spawnNode, watchReady } from "./support/cluster.ts"
import { Fleet } from "./support/fleet.ts"
import { inProcessNode } from "./support/inProcessNode.ts"
import { interleave, Publisher } from "./support/publisher.ts"

const SECRET = "test-secret-0123456789-abcdefghij"
const API_KEY = "cluster-test-api-key"
const CLIENTS = 30
const SHARED_EVENTS = 300
const PERSONAL_EVENTS = 30
const OUTAGE_MS = 4_000

const personal = (i: number) => `me:${i}`
const expected = (channel: string) => (channel === "shared:0" ? SHARED_EVENTS : PERSONAL_EVENTS)
const ms = (n: number) => `${Math.round(n)} ms`
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

/** A tidings node inside this process (for the in-process publish), configured from the same environment. */
/** First sample of `http` at or after `from` with `status`, as milliseconds after `from`. */
const firstAfter = (samples: ReadonlyArray<ReadySample>, http: string, from: number, status: number) => {
  const sample = samples.find((s) => s.http === http && s.at >= from && s.status === status)
  return sample === undefined ? undefined : sample.at - from
}

for (const kind of brokerKinds) {
  const binary = brokerBinary(kind, `Broker faults (${kind})`)
  if (binary === undefined) {
    describe.skip(`broker faults over ${kind} (${kind}-server not installed)`, () => {
      it("skipped", () => {})
    })
    continue
  }

  describe(`broker faults over ${kind}`, () => {
    const brokers: Array<Broker> = []
    const fleets: Array<Fleet> = []
    const clients: Array<{ readonly close: () => void }> = []
    let local: Awaited<ReturnType<typeof inProcessNode>> | undefined

    afterAll(async () => {
      for (const fleet of fleets) fleet.close()
      for (const client of clients) client.close()
      await local?.close().catch(() => {})
      await killAll()
      for (const broker of brokers) await broker.close()
    })

    it("the broker is stopped for 4 s and restarted: publishers told, readiness follows, nothing acked lost", async () => {
      const broker = await startBroker(kind, binary)
      brokers.push(broker)
      const env = { ...broker.env("faults"), TIDINGS_JWT_SECRET: SECRET, TIDINGS_API_KEY: API_KEY }
      const nodes: Array<NodeProcess> = await Promise.all([0, 1].map((k) => spawnNode({ name: `node ${k}`, env })))
      local = await inProcessNode(env, { apiKey: API_KEY })
      const urls = [...nodes.map((n) => n.url), local.server.url]

      const fleet = new Fleet({
        urls,
        clients: CLIENTS,
        channelsOf: (i) => ["shared:0", personal(i)],
        expected,
        token: (i) => sign({ sub: `u${i}`, channels: ["shared:*", personal(i)] })
      })
      fleets.push(fleet)
      await fleet.ready()

      const counts = new Map<string, number>([["shared:0", SHARED_EVENTS]])
      for (let i = 0; i < CLIENTS; i++) counts.set(personal(i), PERSONAL_EVENTS)
      const total = [...counts.values()].reduce((a, b) => a + b, 0)
      const publisher = new Publisher({
        nodes: [...nodes.map((n) => n.http), `http://127.0.0.1:${local.server.port}`],
        apiKey: API_KEY,
        runId: randomUUID(),
        eventsPerSecond: 200,
        inFlight: 4,
        retryDelayMs: 250
      })
      const ready = watchReady(nodes.map((n) => n.http))
      const publishing = publisher.run(interleave(counts, 5))

      while (publisher.acked < total / 4) await sleep(20)
      const ackedBefore = publisher.acked
      const stopAt = performance.now()
      await broker.stop()
      const stoppedAt = performance.now()

      await sleep(500)
      // an in-process publish during the outage
      const probeAt = performance.now()
      const probe = await Effect.runPromise(Effect.exit(local.server.publishUnknown("probe", "tick", { n: 1 })))
      const probeMs = performance.now() - probeAt
      // a client that connects during the outage
      const late = new Fleet({
        urls: [nodes[0]!.url],
        clients: 1,
        channelsOf: () => ["shared:0"],
        expected,
        token: () => sign({ sub: "late", channels: ["shared:*"] })
      })
      fleets.push(late)
      await late.members[0]!.client.ready()
      const lateWelcomedMs = performance.now() - stopAt
      let lateLiveAt = 0
      void late.members[0]!.subscriptions[0]!.ready().then(() => {
        lateLiveAt = performance.now()
      })

      await sleep(Math.max(0, stopAt + OUTAGE_MS - performance.now()))
      const startAt = performance.now()
      await broker.start()
      const startedAt = performance.now()

      await publishing
      const publishedAt = performance.now()
      const deadline = Date.now() + 30_000
      let deliveredAt = 0
      while (!(fleet.complete() && late.complete()) && Date.now() < deadline) {
        if (deliveredAt === 0 && fleet.complete()) deliveredAt = performance.now()
        await sleep(20)
      }
      if (deliveredAt === 0) deliveredAt = performance.now()
      await sleep(300)
      while (nodes.some((n) => ready.samples.filter((s) => s.http === n.http).at(-1)?.status !== 200)) {
        if (Date.now() > deadline) break
        await sleep(50)
      }
      await ready.stop()
      const after = await Effect.runPromise(Effect.exit(local.server.publishUnknown("probe", "tick", { n: 1 })))

      const totals = fleet.totals()
      const lateTotals = late.totals()
      const failed503 = publisher.failures.filter((f) => f.status === 503)
      const during503 = failed503.filter((f) => publisher.startedAt + f.at >= stopAt - 50)
      const firstUnready = nodes.map((n) => firstAfter(ready.samples, n.http, stopAt, 503))
      const readyAgain = nodes.map((n) => firstAfter(ready.samples, n.http, startedAt, 200))
      const reconnects = fleet.members.filter((m) => m.opens > 1).length
      const probeError = Option.getOrUndefined(Exit.findErrorOption(probe))
      const lines = [
        `broker faults over ${kind}: ${CLIENTS} clients on 3 nodes, ${total} events at 200/s, broker down ${ms(startAt - stopAt)}`,
        `  broker stop took ${ms(stoppedAt - stopAt)}, start ${ms(startedAt - startAt)}; ${ackedBefore} events acked before the stop`,
        `  publisher: ${failed503.length} × 503 (max ${ms(Math.max(0, ...failed503.map((f) => f.ms)))} each), ` +
          `${publisher.failures.length - failed503.length} other failures; all ${publisher.acked} acked ${ms(publishedAt - startedAt)} after the broker was back; misplaced acks ${publisher.misplacedAcks}`,
        `  503 body: ${failed503[0]?.body ?? "(none)"}`,
        `  in-process publish during the outage: ${Exit.isFailure(probe) ? "failed" : "SUCCEEDED"} in ${ms(probeMs)}: ${JSON.stringify(probeError)}`,
        `  /readyz 503 after ${firstUnready.map((v) => (v === undefined ? "never" : ms(v))).join(", ")}; ` +
          `200 again ${readyAgain.map((v) => (v === undefined ? "never" : ms(v))).join(", ")} after the broker was back`,
        `  connected clients: ${reconnects} reconnected; all delivered ${ms(deliveredAt - startedAt)} after the broker was back; LOST ${totals.lost}, DUPLICATED ${totals.duplicated}, ` +
          `OUT-OF-ORDER ${totals.outOfOrder}, misplaced ${totals.misplaced}, resets ${totals.resets}`,
        `  client connecting during the outage: welcomed ${ms(lateWelcomedMs)} after the stop; subscription live ` +
          `${ms(lateLiveAt - startedAt)} after the broker was back; reported ` +
          `${late.issues.length} issue(s) (${late.issues[0] ?? "none"}); received ${lateTotals.received}/${lateTotals.expected}, ` +
          `lost ${lateTotals.lost}, duplicated ${lateTotals.duplicated}`
      ]
      console.log(lines.join("\n"))
      if (totals.lost + totals.duplicated + totals.outOfOrder + totals.misplaced > 0) {
        for (const node of nodes) console.log(`--- ${node.name} output\n${node.output()}`)
      }
      if (fleet.issues.length > 0) console.log(fleet.issues.slice(0, 10).join("\n"))

      // publishers are told, at once, and a retry after the outage succeeds without appending twice
      expect(during503.length).toBeGreaterThan(0)
      for (const failure of failed503) {
        expect(JSON.parse(failure.body)).toMatchObject({ error: "unavailable", retryable: true })
        expect(failure.ms).toBeLessThan(3_000)
      }
      expect(publisher.failures.filter((f) => f.status !== 503)).toEqual([])
      expect(publisher.acked).toBe(total)
      expect(publisher.misplacedAcks).toBe(0)
      expect(Exit.isFailure(probe)).toBe(true)
      expect(probeError).toMatchObject({
        _tag: "TransportError",
        retryable: true
      })
      expect(Exit.isSuccess(after)).toBe(true)
      // readiness follows the broker, and the nodes were never restarted
      for (const v of firstUnready) expect(v).toBeLessThan(OUTAGE_MS)
      for (const v of readyAgain) expect(v).toBeDefined()
      for (const node of nodes) expect(node.running()).toBe(true)
      // nothing acknowledged is lost, nothing twice, nothing reordered; connected clients never had to reconnect
      expect(reconnects).toBe(0)
      expect({
        lost: totals.lost,
        duplicated: totals.duplicated,
        outOfOrder: totals.outOfOrder,
        misplaced: totals.misplaced,
        resets: totals.resets,
        issues: totals.issues
      }).toEqual({ lost: 0, duplicated: 0, outOfOrder: 0, misplaced: 0, resets: 0, issues: 0 })
      expect(lateTotals).toMatchObject({ lost: 0, duplicated: 0, outOfOrder: 0, misplaced: 0, resets: 0 })
      expect(late.issues.length).toBeGreaterThan(0)
      expect(late.issues.every((issue) => issue.includes("unavailable"))).toBe(true)
    }, 90_000)

    it("the broker crashes (SIGKILL) and restarts at once: what subscribers and publishers see", async () => {
      const broker = await startBroker(kind, binary)
      brokers.push(broker)
      const env = { ...broker.env("crash"), TIDINGS_JWT_SECRET: SECRET, TIDINGS_API_KEY: API_KEY }
      const nodes = await Promise.all([0, 1].map((k) => spawnNode({ name: `crash node ${k}`, env })))
      const channel = "room:crash"
      type Seen = { readonly n: number; readonly epoch: string; readonly offset: number }
      const watch = (i: number, url: string) => {
        const seen: Array<Seen> = []
        const resets: Array<ResetNotice> = []
        const client = ClientNode.make(ChatProtocol, {
          url,
          version: 2,
          token: () => sign({ sub: `c${i}`, channels: ["room:*"] }),
          backoff: { initialDelayMs: 100, maxDelayMs: 1000 }
        })
        clients.push(client)
        client.on("tick", (data, meta) => void seen.push({ n: data.n, epoch: meta.epoch, offset: meta.offset }))
        client.onReset((reset) => void resets.push(reset))
        return { client, seen, resets, ready: client.subscribe(channel, { fromStart: true }).ready() }
      }
      const watchers = Array.from({ length: 10 }, (_, i) => watch(i, nodes[i % 2]!.url))
      await Promise.all(watchers.map((w) => w.ready))
      const publisher = new Publisher({
        nodes: nodes.map((n) => n.http),
        apiKey: API_KEY,
        runId: randomUUID(),
        eventsPerSecond: 1_000,
        inFlight: 1,
        retryDelayMs: 100
      })
      const until = async (check: () => boolean, what: string) => {
        const deadline = Date.now() + 20_000
        while (!check()) {
          if (Date.now() > deadline) throw new Error(`not within 20 s: ${what}`)
          await sleep(20)
        }
      }
      await publisher.run([
        { channel, from: 1, count: 25 },
        { channel, from: 26, count: 25 }
      ])
      await until(() => watchers.every((w) => w.seen.length === 50), "50 events before the crash")

      const crashAt = performance.now()
      await broker.crash()
      await broker.start()
      const startedAt = performance.now()
      await publisher.run([
        { channel, from: 51, count: 25 },
        { channel, from: 76, count: 25 }
      ])
      const publishedMs = performance.now() - startedAt
      await until(() => watchers.every((w) => w.seen.length === 100), "100 events after the restart")
      const fresh = watch(99, nodes[0]!.url)
      await fresh.ready
      await sleep(300)

      const first = watchers[0]!
      const epochs = [...new Set(first.seen.map((e) => e.epoch))]
      const lines = [
        `broker crash over ${kind}: SIGKILL and restart took ${ms(startedAt - crashAt)}; the next 50 events were acked ${ms(publishedMs)} later ` +
          `(${publisher.failures.filter((f) => f.status === 503).length} × 503 meanwhile)`,
        `  each of ${watchers.length} subscribers: ${first.seen.length} events, n in order ${first.seen.every((e, i) => e.n === i + 1)}, ` +
          `epochs ${epochs.length}, offsets ${first.seen[0]?.offset}..${first.seen[49]?.offset} then ${first.seen[50]?.offset}..${first.seen[99]?.offset}, ` +
          `resets ${JSON.stringify(first.resets.map((r) => ({ reason: r.reason, previous: r.previous?.offset, position: r.position.offset })))}`,
        `  a client subscribing from the start afterwards replays ${fresh.seen.length} events (n ${fresh.seen[0]?.n}..${fresh.seen.at(-1)?.n})`
      ]
      console.log(lines.join("\n"))

      for (const w of watchers) {
        expect(w.seen.map((e) => e.n)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
        expect(w.resets.map((r) => r.reason)).toEqual(first.resets.map((r) => r.reason))
      }
      if (kind === "redis") {
        // Redis without persistence comes back empty: the channel starts a new epoch, said out loud
        expect(epochs).toHaveLength(2)
        expect(first.seen.map((e) => e.offset)).toEqual([...range(1, 50), ...range(1, 50)])
        expect(first.resets).toHaveLength(1)
        expect(first.resets[0]).toMatchObject({ reason: "epoch_changed", previous: { epoch: epochs[0], offset: 50 } })
        expect(first.resets[0]!.position.epoch).toBe(epochs[1])
        expect(fresh.seen.map((e) => e.n)).toEqual(range(51, 100))
      } else {
        // JetStream's file store survives a process crash: same epoch, offsets continue, no reset
        expect(epochs).toHaveLength(1)
        expect(first.seen.map((e) => e.offset)).toEqual(range(1, 100))
        expect(first.resets).toEqual([])
        expect(fresh.seen.map((e) => e.n)).toEqual(range(1, 100))
      }
    }, 60_000)
  })
}
