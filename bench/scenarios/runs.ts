/**
 * The `runs` scenario: durable runs across processes. One gateway and two workers (bench/runs/node.ts, each its
 * own process) share a private PostgreSQL and the scenario's transport (Redis or NATS); the clients are plain
 * WebSockets in the orchestrator, which does nothing else meanwhile (the load is hundreds of commands, not
 * thousands of sockets). Three measurements:
 *
 * 1. starts: STARTS runs (one step each) started START_CONCURRENCY at a time, first with one worker, then with
 *    both (the second joins after; the shards it takes move first); a start answers once a worker has begun the
 *    run, so this is runs begun per second, and the start latency.
 * 2. command round trip: `spec.clients` runs in flight, each waiting at a checkpoint; a client answers, the run
 *    (on a worker, another process) resumes and publishes `pong`. Measured: the answer's reply (gateway → storage
 *    → engine) and answer → `pong` at the client (gateway → run on a worker → client), first paced (PACED_RATE
 *    answers per second over all runs, two rounds each), then as fast as the runs answer (the rest of ROUNDS).
 * 3. a worker's SIGKILL: runs in flight on both workers; the worker with more of them is killed; per run of it,
 *    the time from the kill to its next event (published by the other worker once the run moved there).
 */
import { randomUUID } from "node:crypto"
import { SignJWT } from "jose"
import { connectRaw, type Frame, type RawClient } from "../../test/server/support/rawClient.ts"
import { freePort } from "../../test/support/freePort.ts"
import { findPostgres, startPostgresServer } from "../../test/support/postgresServer.ts"
import { broker } from "../brokers.ts"
import { Child } from "../child.ts"
import * as Histogram from "../histogram.ts"
import type { ScenarioResult } from "../results.ts"
import { emptyResult } from "./result.ts"
import type { Context, Spec } from "./spec.ts"

const SECRET = randomUUID() + randomUUID()
const STARTS = 400
const START_CONCURRENCY = 40
const ROUNDS = 6
const PACED_ROUNDS = 2
const PACED_RATE = 20
const KILL_RUNS = 40

interface NodeInfo {
  readonly role: string
  readonly pid: number
  readonly port: number
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

let ids = 0
const send = (client: RawClient, name: string, payload: object) => {
  const id = `b${++ids}`
  const sent = performance.now()
  client.send({ type: "command", id, name, payload })
  return client
    .next((f) => (f.type === "reply" || f.type === "error") && f.id === id, 60_000)
    .then((frame) => ({ frame, ms: performance.now() - sent }))
}

/** Resolves with the receive time of the first frame matching `predicate`, from now on. */
const nextAt = (client: RawClient, predicate: (f: Frame) => boolean, timeoutMs = 60_000) => {
  let at = 0
  return client
    .next((f) => {
      if (!predicate(f)) return false
      at = performance.now()
      return true
    }, timeoutMs)
    .then((frame) => ({ frame, at: at || performance.now() }))
}

const event =
  (channel: string, name: string, test: (data: Record<string, number>) => boolean = () => true) =>
  (f: Frame) =>
    f.type === "event" && f.channel === channel && f.event === name && test(f.data as Record<string, number>)

/** Runs `task(i)` for i < count with at most `concurrency` at once. */
const pool = async (count: number, concurrency: number, task: (i: number) => Promise<void>) => {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(count, concurrency) }, async () => {
      while (next < count) await task(next++)
    })
  )
}

export const runs = async (ctx: Context, spec: Spec): Promise<ScenarioResult> => {
  const result = emptyResult(spec)
  const skip = (reason: string) => {
    result.status = "skipped"
    result.reason = reason
    ctx.log(`  skipped: ${reason}`)
    return result
  }
  if (spec.transport === "memory") return skip("runs across processes need a shared transport (--transport redis)")
  const binaries = findPostgres()
  if (!binaries) return skip("PostgreSQL is not installed (apt-get install -y postgresql)")
  const transportBroker = await broker(spec.transport)
  if (typeof transportBroker === "string") return skip(transportBroker)

  const started = performance.now()
  const database = await startPostgresServer(binaries)
  const children: Array<Child<NodeInfo>> = []
  const clients: Array<RawClient> = []
  try {
    const tag = randomUUID().slice(0, 8)
    const transportEnv: Record<string, string> =
      spec.transport === "redis"
        ? { TIDINGS_TRANSPORT: "redis", REDIS_URL: transportBroker.url, REDIS_KEY_PREFIX: `bench-runs-${tag}:` }
        : {
            TIDINGS_TRANSPORT: "nats",
            NATS_URL: transportBroker.url,
            NATS_STREAM: `BENCH_RUNS_${tag}`,
            NATS_SUBJECT_PREFIX: `bench.runs.${tag}`
          }
    const node = async (name: string, role: "gateway" | "worker") =>
      Child.spawn<NodeInfo>({
        name,
        script: "runs/node.ts",
        readyTimeoutMs: 60_000,
        env: {
          ...transportEnv,
          ROLE: role,
          TIDINGS_PORT: String(await freePort()),
          TIDINGS_RUNNER_PORT: String(await freePort()),
          TIDINGS_DATABASE_URL: database.url,
          TIDINGS_JWT_SECRET: SECRET,
          BENCH_DEADLINE_MS: String(10 * 60_000)
        }
      })
    // the first worker creates the cluster's tables; the second joins after the first measurement
    children.push(await node("worker 1", "worker"))
    const gateway = await node("gateway", "gateway")
    children.push(gateway)
    const url = `ws://127.0.0.1:${gateway.info.port}/ws`
    const token = await new SignJWT({ channels: ["run:*"] })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("bench")
      .setIssuedAt()
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(SECRET))
    for (let k = 0; k < 8; k++) {
      const client = await connectRaw(url, { protocols: ["tidings.benchruns.v1.json"] })
      client.send({ type: "authenticate", token })
      await client.next((f) => f.type === "welcome")
      clients.push(client)
    }
    const clientFor = (i: number) => clients[i % clients.length]!
    const start = async (i: number, payload: object) => {
      const { frame, ms } = await send(clientFor(i), "start", payload)
      if (frame.type !== "reply" || frame.ok !== true) throw new Error(`start failed: ${JSON.stringify(frame)}`)
      return { ...(frame.result as { runId: string; channel: string }), ms }
    }

    // 1. starts, with one worker and then with two
    const measureStarts = async (workers: number) => {
      await pool(20, 10, async (i) => void (await start(i, { steps: 1, stepMs: 0, rounds: 0 }))) // warm-up
      const latency = Histogram.make()
      const t = performance.now()
      await pool(STARTS, START_CONCURRENCY, async (i) => {
        const run = await start(i, { steps: 1, stepMs: 0, rounds: 0 })
        latency.recordValue(Math.round(run.ms * 1000))
      })
      const perSec = STARTS / ((performance.now() - t) / 1000)
      const summary = Histogram.summarize(latency)
      ctx.log(
        `  starts with ${workers} worker${workers > 1 ? "s" : ""}: ${STARTS} runs begun at ${START_CONCURRENCY} in flight: ${perSec.toFixed(0)} runs/s, start p50 ${summary.p50} ms, p99 ${summary.p99} ms`
      )
      return { perSec, summary }
    }
    const oneWorker = await measureStarts(1)
    children.push(await node("worker 2", "worker"))
    await sleep(5000) // the shards worker 2 takes over move
    const twoWorkers = await measureStarts(2)
    const startedPerSec = Math.max(oneWorker.perSec, twoWorkers.perSec)
    const startSummary = twoWorkers.summary

    // 2. command round trip with spec.clients runs in flight
    const inFlight = spec.clients
    const reply = Histogram.make()
    const roundTrip = Histogram.make()
    const looping = await Promise.all(
      Array.from({ length: inFlight }, (_, i) => start(i, { steps: 0, stepMs: 0, rounds: ROUNDS }))
    )
    for (const [i, run] of looping.entries())
      clientFor(i).send({ type: "subscribe", channel: run.channel, fromStart: true })
    await Promise.all(
      looping.map((run, i) =>
        clientFor(i).next(
          event(run.channel, "waiting", (d) => d.round === 1),
          60_000
        )
      )
    )
    const answer = async (i: number, round: number) => {
      const run = looping[i]!
      const client = clientFor(i)
      await client.next(
        event(run.channel, "waiting", (d) => d.round === round),
        60_000
      )
      const pong = nextAt(
        client,
        event(run.channel, "pong", (d) => d.round === round)
      )
      const sent = performance.now()
      const { frame, ms } = await send(client, "answer", { runId: run.runId, round })
      if (frame.type !== "reply" || frame.ok !== true) throw new Error(`answer failed: ${JSON.stringify(frame)}`)
      return { replyMs: ms, roundTripMs: (await pong).at - sent }
    }
    // paced: PACED_RATE answers a second over all runs, PACED_ROUNDS rounds each
    const pacedReply = Histogram.make()
    const paced = Histogram.make()
    const pacedAnswers: Array<Promise<void>> = []
    for (let round = 1; round <= PACED_ROUNDS; round++) {
      for (let i = 0; i < inFlight; i++) {
        pacedAnswers.push(
          answer(i, round).then(({ replyMs, roundTripMs }) => {
            pacedReply.recordValue(Math.round(replyMs * 1000))
            paced.recordValue(Math.round(roundTripMs * 1000))
          })
        )
        await sleep(1000 / PACED_RATE)
      }
    }
    await Promise.all(pacedAnswers)
    const pacedSummary = Histogram.summarize(paced)
    const pacedReplySummary = Histogram.summarize(pacedReply)
    ctx.log(
      `  commands paced at ${PACED_RATE}/s over ${inFlight} runs in flight: reply p50 ${pacedReplySummary.p50} ms, p99 ${pacedReplySummary.p99} ms; answer → run's next event p50 ${pacedSummary.p50} ms, p99 ${pacedSummary.p99} ms`
    )
    // then as fast as they come: every run answers its next round as soon as it waits
    const t2 = performance.now()
    await Promise.all(
      looping.map(async (_, i) => {
        for (let round = PACED_ROUNDS + 1; round <= ROUNDS; round++) {
          const { replyMs, roundTripMs } = await answer(i, round)
          reply.recordValue(Math.round(replyMs * 1000))
          roundTrip.recordValue(Math.round(roundTripMs * 1000))
        }
      })
    )
    const answersPerSec = (inFlight * (ROUNDS - PACED_ROUNDS)) / ((performance.now() - t2) / 1000)
    const replySummary = Histogram.summarize(reply)
    const roundTripSummary = Histogram.summarize(roundTrip)
    ctx.log(
      `  commands unpaced: ${inFlight} runs in flight, ${ROUNDS - PACED_ROUNDS} answers each (${answersPerSec.toFixed(0)} answers/s): reply p50 ${replySummary.p50} ms, p99 ${replySummary.p99} ms; answer → run's next event p50 ${roundTripSummary.p50} ms, p99 ${roundTripSummary.p99} ms`
    )

    // 3. kill a worker with runs in flight
    const long = await Promise.all(
      Array.from({ length: KILL_RUNS }, (_, i) => start(i, { steps: 60, stepMs: 250, rounds: 0 }))
    )
    for (const [i, run] of long.entries())
      clientFor(i).send({ type: "subscribe", channel: run.channel, fromStart: true })
    await sleep(2000)
    const lastPid = (i: number, channel: string) => {
      const events = clientFor(i).events(channel)
      return (events.at(-1)?.data as { pid: number } | undefined)?.pid
    }
    const workers = children.filter((c) => c.info.role === "worker")
    const countOn = (pid: number) => long.filter((run, i) => lastPid(i, run.channel) === pid).length
    const victim = workers.reduce((a, b) => (countOn(b.pid) > countOn(a.pid) ? b : a))
    const victims = long.map((run, i) => ({ run, i })).filter(({ run, i }) => lastPid(i, run.channel) === victim.pid)
    const nextEvents = victims.map(({ run, i }) => {
      const seen = clientFor(i).events(run.channel).at(-1)?.offset as number
      return nextAt(
        clientFor(i),
        (f) =>
          f.type === "event" &&
          f.channel === run.channel &&
          (f.offset as number) > seen &&
          (f.data as { pid: number }).pid !== victim.pid,
        60_000
      )
    })
    const killedAt = performance.now()
    victim.process.kill("SIGKILL")
    const delays = (await Promise.all(nextEvents)).map(({ at }) => at - killedAt).sort((a, b) => a - b)
    const median = delays[Math.floor(delays.length / 2)] ?? 0
    const slowest = delays.at(-1) ?? 0
    ctx.log(
      `  SIGKILL of a worker with ${victims.length} of ${KILL_RUNS} runs in flight: their next events after ${Math.round(delays[0] ?? 0)}–${Math.round(slowest)} ms (median ${Math.round(median)} ms)`
    )

    result.headline = { label: "runs started/s", value: Math.round(startedPerSec), unit: "/s" }
    result.latency = pacedSummary
    result.rates = {
      runsStartedPerSec: Math.round(startedPerSec),
      runsStartedPerSecOneWorker: Math.round(oneWorker.perSec),
      runsStartedPerSecTwoWorkers: Math.round(twoWorkers.perSec),
      startP50Ms: startSummary.p50,
      startP99Ms: startSummary.p99,
      runsInFlight: inFlight,
      pacedAnswersPerSec: PACED_RATE,
      answerReplyP50Ms: pacedReplySummary.p50,
      answerReplyP99Ms: pacedReplySummary.p99,
      commandRoundTripP50Ms: pacedSummary.p50,
      commandRoundTripP99Ms: pacedSummary.p99,
      unpacedAnswersPerSec: Math.round(answersPerSec),
      unpacedRoundTripP50Ms: roundTripSummary.p50,
      unpacedRoundTripP99Ms: roundTripSummary.p99,
      killedWorkerRuns: victims.length,
      killToNextEventMedianMs: Math.round(median),
      killToNextEventMaxMs: Math.round(slowest)
    }
    result.notes.push(
      "1 gateway and 2 workers (bench/runs/node.ts) on PostgreSQL and the scenario's transport; default runs settings (lock expiration 5 s, refresh 1 s)",
      "command round trip: answer sent on the gateway → the run resumes on a worker → its `pong` reaches the client; the table's latency columns are the paced round trip"
    )
  } catch (error) {
    result.status = "failed"
    result.reason = (error as Error).message.split("\n").slice(0, 3).join(" ")
    ctx.log(`  FAILED: ${result.reason}`)
  } finally {
    for (const c of clients) c.close()
    for (const child of children) child.process.kill("SIGKILL")
    await Promise.all(children.map((c) => c.exited))
    await database.dispose()
    result.durationMs = Math.round(performance.now() - started)
  }
  return result
}
