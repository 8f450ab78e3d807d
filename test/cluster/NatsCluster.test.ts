/**
 * The broker's own failover on NATS: a private 3-server nats-server cluster (JetStream, own ports and store
 * directories), 3 tidings node processes given all three URLs (NATS_URL), and the streams the transport creates
 * with its default replicas (3, since the servers announce a cluster of three). 100 plain WebSocket clients are
 * subscribed to one channel, spread over the nodes, while an HTTP publisher writes steadily with idempotency keys
 * (a failed batch is retried, on another node, with the same key). Meanwhile:
 *
 * 1. the nats-server leading the channel stream is killed with SIGKILL, and restarted once a new leader serves;
 * 2. another nats-server (the leader again, if the restarted one did not take it back) is frozen with SIGSTOP for
 *    5 s, then SIGCONT.
 *
 * At the end every acknowledged event is in the channel's log exactly once, at the offset of its `n`, and every
 * client received every event once, in order, on the socket it opened at the start. It prints lost, duplicated,
 * out-of-order and the longest publish stall (the longest time between two acknowledgements). Each node's `/readyz`
 * is sampled every 250 ms throughout: it prints when each went 503 and back, and every sample must be answered.
 */
import { randomUUID } from "node:crypto"
import { afterAll, describe, expect, it } from "vitest"
import { sign } from "../server/support/testServer.ts"
import { type NatsCluster, startNatsCluster } from "../support/natsCluster.ts"
import { requireBinary } from "../support/requireBinary.ts"
import { tally, watchChannel } from "./support/channelWatch.ts"
import { killAll, type NodeProcess, sleep, spawnNode, watchReady } from "./support/cluster.ts"
import { batchesOf, Publisher } from "./support/publisher.ts"
import { describeTimeline, readyTimelines } from "./support/readyTimeline.ts"

const SECRET = "test-secret-0123456789-abcdefghij"
const API_KEY = "cluster-test-api-key"
const CLIENTS = 100
const CHANNEL = "shared:failover"
const RATE = 100
const BATCH = 5
const ms = (n: number) => `${Math.round(n)} ms`

/** A plain WebSocket subscriber of CHANNEL (support/channelWatch.ts). */
const subscriber = (url: string, token: string, since?: { epoch: string; offset: number }) =>
  watchChannel(url, token, CHANNEL, since)

const binary = requireBinary("nats-server", "NATS cluster failover")

describe.skipIf(binary === undefined)("NATS cluster: the broker's own failover", () => {
  let cluster: NatsCluster | undefined
  const sockets: Array<{ readonly close: () => void }> = []
  let stopWatching: () => Promise<void> = async () => {}

  afterAll(async () => {
    for (const s of sockets) s.close()
    await stopWatching()
    await killAll()
    await cluster?.close()
  })

  it("stream leader SIGKILLed and restarted, another server SIGSTOPped 5 s: nothing acked lost, twice or out of order", async () => {
    const started = performance.now()
    cluster = await startNatsCluster({ binary: binary! })
    await cluster.ready()
    const id = randomUUID().replaceAll("-", "").slice(0, 10)
    const stream = `T_failover_${id}`
    const env = {
      TIDINGS_TRANSPORT: "nats",
      NATS_URL: cluster.urls,
      NATS_STREAM: stream,
      NATS_SUBJECT_PREFIX: `t.failover_${id}`,
      TIDINGS_JWT_SECRET: SECRET,
      TIDINGS_API_KEY: API_KEY
    }
    const nodes: Array<NodeProcess> = []
    // one after the other: the first creates the streams, the others verify them
    for (let k = 0; k < 3; k++) nodes.push(await spawnNode({ name: `node ${k}`, env }))

    const replicas = await Promise.all(
      [stream, `KV_${stream}_cursors`, `KV_${stream}_presence`].map(async (name) => {
        const info = (await cluster!.streamInfo(name)) as { config?: { num_replicas?: number } }
        return info.config?.num_replicas
      })
    )
    expect(replicas).toEqual([3, 3, 3])

    const token = await sign({ sub: "watcher", channels: ["shared:*"] })
    const clients = await Promise.all(
      Array.from({ length: CLIENTS }, (_, i) => subscriber(nodes[i % nodes.length]!.url, token))
    )
    sockets.push(...clients)
    const readiness = watchReady(
      nodes.map((n) => n.http),
      250
    )
    stopWatching = readiness.stop

    // a steady publisher; the fault schedule runs beside it
    const acks: Array<number> = []
    /** ackedAt[n]: when the publisher got the acknowledgement of the batch holding n */
    const ackedAt = new Float64Array(RATE * 30 + 1)
    const total = RATE * 30
    const publisher = new Publisher({
      nodes: nodes.map((n) => n.http),
      apiKey: API_KEY,
      runId: randomUUID(),
      eventsPerSecond: RATE,
      inFlight: 1,
      retryDelayMs: 100,
      downForMs: 1000
    })
    const batches = batchesOf(CHANNEL, total, BATCH)
    const publishing = publisher.run(batches, (acked) => {
      const now = performance.now()
      acks.push(now)
      for (let n = acked - BATCH + 1; n <= acked; n++) ackedAt[n] = now
    })

    const events: Array<string> = []
    const note = (what: string) => events.push(`${ms(publisher.elapsed())} ${what}`)
    const leaderOf = async () => {
      for (;;) {
        const leader = await cluster!.leaderOf(stream)
        if (leader !== undefined) return leader
        await sleep(100)
      }
    }

    await sleep(4_000)
    const first = await leaderOf()
    note(`SIGKILL ${first} (stream leader)`)
    const killedAt = performance.now()
    await cluster.member(first).kill()
    const second = await leaderOf()
    note(`new leader ${second} after ${ms(performance.now() - killedAt)}`)
    await sleep(2_000)
    await cluster.member(first).restart()
    note(`${first} restarted`)
    await sleep(6_000)
    const leaderNow = await leaderOf()
    const paused = leaderNow !== first ? leaderNow : cluster.members.find((m) => m.name !== first)!.name
    note(`SIGSTOP ${paused}${paused === leaderNow ? " (stream leader)" : ""}`)
    const pausedAt = performance.now()
    cluster.member(paused).pause()
    await sleep(5_000)
    cluster.member(paused).resume()
    note(`SIGCONT ${paused}; leader now ${await leaderOf()}`)

    await publishing
    await readiness.stop()
    note(`all ${publisher.acked} events acknowledged`)
    const deadline = Date.now() + 20_000
    while (clients.some((c) => c.seen.length < total) && Date.now() < deadline) await sleep(50)
    await sleep(300)

    // the log itself: a fresh subscriber replays the whole channel
    const replay = await subscriber(nodes[0]!.url, token)
    sockets.push(replay)
    while (replay.seen.length < total && Date.now() < deadline + 5_000) await sleep(50)
    const log = tally(replay.seen, total)

    let lost = 0
    let duplicated = 0
    let outOfOrder = 0
    let misplaced = 0
    for (const c of clients) {
      const t = tally(c.seen, total)
      lost += t.lost
      duplicated += t.duplicated
      outOfOrder += t.outOfOrder
      misplaced += t.misplaced
    }
    // the live feed's stall: how long after its acknowledgement the slowest client received an event
    let lag = 0
    for (const c of clients) for (const e of c.seen) lag = Math.max(lag, e.at - (ackedAt[e.n] ?? e.at))
    const gaps = acks.map((at, i) => (i === 0 ? at - publisher.startedAt : at - acks[i - 1]!))
    const stall = Math.max(...gaps)
    // per phase, by when the acknowledgement that ended the gap came
    const stallIn = (from: number, to: number) =>
      Math.max(0, ...gaps.filter((_, i) => acks[i]! >= from && acks[i]! < to))
    const killStall = stallIn(killedAt, pausedAt)
    const pauseStall = stallIn(pausedAt, Number.POSITIVE_INFINITY)
    const failures = publisher.failures
    const timelines = readyTimelines(
      nodes.map((n) => n.http),
      readiness.samples
    )
    const statuses = [...new Set(failures.map((f) => f.status))]
    console.log(
      [
        `NATS cluster failover: 3 nats-servers (streams R${replicas[0]}), 3 tidings nodes, ${CLIENTS} plain WebSocket clients, ` +
          `${total} events at ${RATE}/s in batches of ${BATCH}; whole test ${ms(performance.now() - started)}`,
        ...events.map((e) => `  ${e}`),
        `  publisher: ${publisher.acked} acked, ${failures.length} failed attempts (statuses ${statuses.join(", ") || "none"}; ` +
          `e.g. ${failures[0]?.body.slice(0, 160) ?? "none"}); misplaced acks ${publisher.misplacedAcks}`,
        ...failures
          .slice(0, 8)
          .map(
            (f) =>
              `    failed at ${ms(f.at)} after ${ms(f.ms)}: ${f.status} ${f.body.replace(/^.*"message":"/, "").slice(0, 110)}`
          ),
        `  longest publish stall (between two acks): ${ms(stall)} — through the leader's SIGKILL ${ms(killStall)}, ` +
          `through the SIGSTOP ${ms(pauseStall)}; longest delivery lag (ack to a client): ${ms(lag)}`,
        `  /readyz (every 250 ms; times from the publisher's start):`,
        ...timelines.map((t, i) => `    ${describeTimeline(nodes[i]!.name, t, publisher.startedAt)}`),
        `  log: ${replay.seen.length} entries; lost ${log.lost}, duplicated ${log.duplicated}, out-of-order ${log.outOfOrder}, misplaced ${log.misplaced}`,
        `  clients: LOST ${lost}, DUPLICATED ${duplicated}, OUT-OF-ORDER ${outOfOrder}, misplaced ${misplaced}; ` +
          `sockets closed ${clients.filter((c) => c.closed()).length}, resets/errors ${clients.reduce((a, c) => a + c.errors.length, 0)}`
      ].join("\n")
    )

    expect(publisher.acked).toBe(total)
    expect(publisher.misplacedAcks).toBe(0)
    expect(log).toEqual({ lost: 0, duplicated: 0, outOfOrder: 0, misplaced: 0 })
    expect({ lost, duplicated, outOfOrder, misplaced }).toEqual({ lost: 0, duplicated: 0, outOfOrder: 0, misplaced: 0 })
    expect(clients.filter((c) => c.closed() || c.errors.length > 0)).toHaveLength(0)
    for (const node of nodes) expect(node.running()).toBe(true)
    // /readyz answered every sample (503 or 200), through the kill and the freeze
    expect(timelines.map((t) => t.unanswered)).toEqual([0, 0, 0])
    // nats-server waits 4–9 s for a silent leader before electing another: the stall is bounded by that, not by us
    expect(stall).toBeLessThan(15_000)
  }, 120_000)
})
