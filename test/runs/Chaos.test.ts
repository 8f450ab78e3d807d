/**
 * Runs under faults, with separate processes: 2 gateways, 2 workers (test/runs/support/node.ts, the steps
 * application), Redis as the transport and PostgreSQL for runs. 50 runs are started by clients spread over both
 * gateways, each with 6 steps and a checkpoint after step 2; the checkpoints are answered by a client on the other
 * gateway; 10 runs are cancelled from the other gateway (5 while they wait at their checkpoint, 5 mid-steps).
 * While they are in flight worker 1 is killed with SIGKILL; once worker 2 has taken over its runs, worker 2 is
 * stopped with SIGSTOP for 3 s.
 *
 * At the end: every run not cancelled completed; every cancelled one ends with exactly one `cancelled` event;
 * every run's channel holds each of its events exactly once and in order (offsets contiguous from 1); and no step
 * that had completed before the kill ran again (each step execution appends lines to a side-effect file as it
 * begins and ends; a step may run twice only if the kill cut its first execution off, before its end or within
 * 3 s of running time after it, when its result may not have been stored yet, and never once its run had begun
 * the next step). Steps cut off mid-way re-run on another
 * worker and publish their first part again, which the log must hold once, and restart their streamed message
 * (the kill comes as a stream begins): every step's message, assembled as a client does, must be whole. The test
 * requires some of each. Prints lost, duplicated, out-of-order, re-executed and garbled (all 0), and how long the
 * killed worker's runs took to publish again.
 */
import { randomUUID } from "node:crypto"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"
import { type Broker, brokerBinary, startBroker } from "../cluster/support/brokers.ts"
import { killAll, type NodeProcess, sleep, spawnNode } from "../cluster/support/cluster.ts"
import type { Frame, RawClient } from "../server/support/rawClient.ts"
import { connectRaw } from "../server/support/rawClient.ts"
import { SECRET, sign } from "../server/support/testServer.ts"
import { freePort } from "../support/freePort.ts"
import { type PostgresServer, requirePostgres, startPostgresServer } from "../support/postgresServer.ts"

const NODE = fileURLToPath(new URL("./support/node.ts", import.meta.url))
const RUNS = 50
const STEPS = 6
const CHECKPOINT_AFTER = 2
const STEP_MS = 300
/** Runs cancelled while they wait at the checkpoint, and mid-steps (when step 4 begins). */
const cancelAtCheckpoint = (i: number) => i % 10 === 0
const cancelMidSteps = (i: number) => i % 10 === 5
/**
 * A step execution that ran less than this after it ended (before its process was killed or stopped, or before it
 * began again) may not have had its result stored: Effect Cluster stores a reply only once a refresh of its shard's
 * lock (every 2 s by default) confirms the lock, and a check may take up to that long. Such a step may run again.
 */
const IN_FLIGHT_MARGIN_MS = 3000

/** A run's complete log, as [event, n, part]. */
const expectedLog = (): Array<string> => {
  const log: Array<string> = []
  for (let n = 1; n <= STEPS; n++) {
    log.push(`progress ${n}/1`, `progress ${n}/2`)
    if (n === CHECKPOINT_AFTER) log.push("waiting", "resolved")
  }
  log.push("done")
  return log
}

const describeEvent = (frame: Frame): string => {
  const data = frame.data as { n?: number; part?: number }
  return frame.event === "progress" ? `progress ${data.n}/${data.part}` : String(frame.event)
}

const postgres = requirePostgres("Runs chaos")
const redisBinary = brokerBinary("redis", "Runs chaos")

const connect = async (url: string): Promise<RawClient> => {
  const client = await connectRaw(url, { protocols: ["tidings.steps.v1.json"] })
  client.send({ type: "authenticate", token: await sign({ sub: "ann", channels: ["run:*"] }) })
  await client.next((f) => f.type === "welcome")
  return client
}

let ids = 0
const command = async (client: RawClient, name: string, payload: object, timeoutMs = 30_000) => {
  const id = `k${++ids}`
  client.send({ type: "command", id, name, payload })
  return client.next((f) => (f.type === "reply" || f.type === "error") && f.id === id, timeoutMs)
}

if (postgres === undefined || redisBinary === undefined) {
  describe.skip("runs chaos (PostgreSQL or redis-server not installed)", () => {
    it("skipped", () => {})
  })
} else {
  describe("runs chaos: 2 gateways, 2 workers, Redis, PostgreSQL", () => {
    let broker: Broker | undefined
    let database: PostgresServer | undefined
    const dir = mkdtempSync(join(tmpdir(), "tidings-chaos-"))
    const clients: Array<RawClient> = []
    const processes: Array<NodeProcess> = []
    let passed = false
    const t0 = Date.now()
    /** Where the test stands, printed as it goes: a timeout then says which phase hung. */
    const mark = (what: string) => process.stdout.write(`runs chaos +${Date.now() - t0} ms: ${what}\n`)

    afterAll(async () => {
      if (!passed || process.env.CHAOS_DEBUG) {
        for (const p of processes) process.stdout.write(`--- ${p.name} (pid ${p.pid}) ---\n${p.output()}\n`)
      }
      for (const c of clients) c.close()
      await killAll()
      await broker?.close()
      await database?.dispose()
      rmSync(dir, { recursive: true, force: true })
    })

    it("SIGKILL one worker, SIGSTOP the other: nothing lost, duplicated, reordered or re-executed", async () => {
      ;[broker, database] = await Promise.all([startBroker("redis", redisBinary), startPostgresServer(postgres)])
      const sideEffects = join(dir, "side-effects.log")
      const env = {
        ...broker.env(`chaos-${randomUUID().slice(0, 6)}`),
        TIDINGS_DATABASE_URL: database.url,
        TIDINGS_JWT_SECRET: SECRET,
        SIDE_EFFECTS: sideEffects,
        STEP_MS: String(STEP_MS),
        // the engine's answer to a command may take longer than the default 3 s bound while a worker is frozen and
        // CI runs another suite beside this one (seen once: `answer` refused as unavailable after 3,000 ms); what this
        // test judges is loss, duplication, order and re-execution, not that bound
        COMMAND_TIMEOUT_MS: "10000",
        // the workers' output keeps their warnings (printed when something went wrong), not a line per run
        LOG_LEVEL: process.env.CHAOS_LOG_LEVEL ?? "Warn"
      }
      const runnerPorts = [await freePort(), await freePort()]
      const worker = (k: number) =>
        spawnNode({
          name: `worker ${k + 1}`,
          script: NODE,
          env: { ...env, ROLE: "worker", TIDINGS_RUNNER_PORT: String(runnerPorts[k]) }
        })
      const workers: ReadonlyArray<NodeProcess> = [await worker(0), await worker(1)]
      const gateways = await Promise.all(
        [0, 1].map((k) => spawnNode({ name: `gateway ${k + 1}`, script: NODE, env: { ...env, ROLE: "gateway" } }))
      )
      processes.push(...workers, ...gateways)
      mark("2 workers and 2 gateways ready")
      // one client per gateway; run i is started on gateway i % 2 and followed, answered, cancelled on the other
      const byGateway = await Promise.all(gateways.map((g) => connect(g.url)))
      clients.push(...byGateway)
      const starter = (i: number) => byGateway[i % 2]!
      const other = (i: number) => byGateway[(i + 1) % 2]!

      const runs: Array<{ runId: string; channel: string }> = []
      const startedAt = Date.now()
      const started = await Promise.all(
        Array.from({ length: RUNS }, (_, i) =>
          command(starter(i), "start", { steps: STEPS, checkpointAfter: CHECKPOINT_AFTER })
        )
      )
      for (const reply of started) {
        expect(reply).toMatchObject({ type: "reply", ok: true })
        runs.push(reply.result as { runId: string; channel: string })
      }
      const startMs = Date.now() - startedAt
      mark(`${RUNS} runs started`)
      for (const [i, run] of runs.entries()) other(i).send({ type: "subscribe", channel: run.channel, fromStart: true })

      // answer or cancel each run from the gateway that did not start it
      const cancels: Array<Promise<Frame>> = []
      const answers = runs.map(async (run, i) => {
        const follower = other(i)
        await follower.next((f) => f.type === "event" && f.channel === run.channel && f.event === "waiting", 120_000)
        if (cancelAtCheckpoint(i)) return void cancels.push(command(follower, "cancel", { runId: run.runId }))
        const reply = await command(follower, "answer", { runId: run.runId, answer: "yes" })
        expect(reply).toMatchObject({ ok: true })
        if (cancelMidSteps(i)) {
          await follower.next(
            (f) =>
              f.type === "event" &&
              f.channel === run.channel &&
              f.event === "progress" &&
              (f.data as { n: number }).n === 4,
            120_000
          )
          cancels.push(command(follower, "cancel", { runId: run.runId }))
        }
      })

      // the faults: worker 1 is killed right as one of its runs begins streaming in a step past the checkpoint,
      // so at least that step is cut off mid-way, its stream begun
      const killedPid = workers[0]!.pid
      await Promise.any(
        byGateway.map((client) =>
          client.next((f) => {
            if (f.type !== "event" || f.event !== "chunk") return false
            const data = f.data as { n: number; i: number; pid: number }
            return data.pid === killedPid && data.i === 0 && data.n > CHECKPOINT_AFTER
          }, 30_000)
        )
      )
      const killedAt = Date.now()
      await workers[0]!.kill("SIGKILL")
      mark("worker 1 killed")
      // worker 2 is stopped once it has taken over worker 1's runs, while it executes them
      const survivor = workers[1]!.pid
      await Promise.any(
        byGateway.map((client) =>
          client.next((f) => {
            if (f.type !== "event" || (f.data as { pid: number }).pid !== survivor) return false
            return client.events(f.channel as string).some((e) => (e.data as { pid: number }).pid === killedPid)
          }, 60_000)
        )
      )
      const stoppedAt = Date.now()
      process.kill(workers[1]!.pid, "SIGSTOP")
      mark("worker 2 took over and is stopped")
      await sleep(3000)
      process.kill(workers[1]!.pid, "SIGCONT")
      const resumedAt = Date.now()
      mark("worker 2 resumed")

      await Promise.all(answers)
      mark("checkpoints answered")
      for (const reply of await Promise.all(cancels)) expect(reply).toMatchObject({ ok: true })
      mark("cancels answered")
      // every run ends: with done, or with cancelled
      await Promise.all(
        runs.map((run, i) =>
          other(i).next(
            (f) => f.type === "event" && f.channel === run.channel && (f.event === "done" || f.event === "cancelled"),
            120_000
          )
        )
      )
      await sleep(500) // anything published after a run's end would arrive by now
      const endedMs = Date.now() - startedAt
      mark("every run ended")

      // the logs
      const expected = expectedLog()
      let lost = 0
      let duplicated = 0
      let outOfOrder = 0
      let gaps = 0
      let cancelledRuns = 0
      const firstAfterKill: Array<number> = []
      let restarts = 0
      let garbled = 0
      let streamsRepeatedAfterStepEnd = 0
      for (const [i, run] of runs.entries()) {
        const all = other(i).events(run.channel)
        const offsets = all.map((e) => e.offset as number)
        if (offsets.some((offset, k) => offset !== k + 1)) gaps++
        // each step's message, assembled as a client does (a restart drops what came before), is whole, and its
        // chunks lie between that step's two progress events — or, for a step killed after its last publication
        // but before it returned, in a restart right after its end (executed again, it streams again; its
        // progress events are not repeated)
        const texts = new Map<number, string>()
        let step = 0
        const ended = new Set<number>()
        const restartedAfterEnd = new Set<number>()
        for (const e of all) {
          const data = e.data as { n: number; part?: number; text?: string; restart?: boolean }
          if (e.event === "progress") {
            step = data.part === 1 ? data.n : 0
            if (data.part === 2) ended.add(data.n)
          }
          if (e.event !== "chunk") continue
          if (data.n !== step) {
            const repeat = step === 0 && ended.has(data.n) && (data.restart || restartedAfterEnd.has(data.n))
            if (!repeat) garbled++
            else if (data.restart) restartedAfterEnd.add(data.n)
          }
          if (data.restart) restarts++
          texts.set(data.n, (data.restart ? "" : (texts.get(data.n) ?? "")) + data.text)
        }
        streamsRepeatedAfterStepEnd += restartedAfterEnd.size
        for (const [n, text] of texts) if (text !== `${n}.0 ${n}.1 ${n}.2 `) garbled++
        if (process.env.CHAOS_DEBUG && [...texts].some(([n, t]) => t !== `${n}.0 ${n}.1 ${n}.2 `)) {
          process.stdout.write(`${JSON.stringify(all.map((e) => [e.offset, e.event, e.data]))}\n`)
        }
        const events = all.filter((e) => e.event !== "chunk")
        const names = events.map(describeEvent)
        const counts = new Map<string, number>()
        for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1)
        for (const count of counts.values()) if (count > 1) duplicated += count - 1
        const wasCancelled = names.at(-1) === "cancelled"
        if (wasCancelled) cancelledRuns++
        const body = wasCancelled ? names.slice(0, -1) : names
        // in order: each event at its place in the complete log; a cancelled run holds a prefix of it
        const positions = body.map((name) => expected.indexOf(name))
        for (let k = 1; k < positions.length; k++) if (positions[k]! < positions[k - 1]!) outOfOrder++
        const wanted = wasCancelled ? expected.slice(0, body.length) : expected
        lost += wanted.filter((name) => !counts.has(name)).length
        if (cancelAtCheckpoint(i) || cancelMidSteps(i)) expect(wasCancelled, `run ${i} was cancelled`).toBe(true)
        else expect(names.at(-1), `run ${i} completed`).toBe("done")
        expect(names.filter((n) => n === "cancelled").length).toBe(wasCancelled ? 1 : 0)
        // the killed worker's runs: their first event after the kill (received time is close enough)
        const before = events.filter((e) => (e.data as { pid: number }).pid === killedPid)
        if (before.length > 0 && !["done", "cancelled"].includes(names[before.length - 1] ?? "")) {
          const next = events.find(
            (e) => (e.data as { pid: number }).pid !== killedPid && events.indexOf(e) >= before.length
          )
          if (next) firstAfterKill.push(next.time as number)
        }
      }

      // the side effects: a step that had completed never runs again. A step cut off mid-way (by the kill, or by the
      // stop: its worker gives up the run's shard and executes the run again) runs again; that is at least once.
      // Completed means: an execution ended, and the next began over a second later (time to store the result).
      const executions = new Map<string, Array<{ pid: number; begin: number; end?: number }>>()
      const lines = existsSync(sideEffects) ? readFileSync(sideEffects, "utf8").trim().split("\n") : []
      for (const line of lines) {
        const [kind, runId, n, pid, at] = line.split(" ")
        const key = `${runId} ${n}`
        const list = executions.get(key) ?? []
        if (kind === "begin") list.push({ pid: Number(pid), begin: Number(at) })
        else {
          const open = list.find((e) => e.pid === Number(pid) && e.end === undefined)
          if (open) open.end = Number(at)
        }
        executions.set(key, list)
      }
      /** How long process `pid` ran between `from` and `until`: a killed process stops at its kill; a stopped one
       * does not run while stopped. */
      const runningTimeAfter = (pid: number, from: number, until: number): number => {
        if (pid === killedPid) return Math.min(until, killedAt) - from
        const paused = pid === survivor ? Math.max(0, Math.min(until, resumedAt) - Math.max(from, stoppedAt)) : 0
        return until - from - paused
      }
      let reExecuted = 0
      let reRunInFlight = 0
      const reExecutedDetail: Array<object> = []
      for (const [key, list] of executions) {
        const [runId, n] = key.split(" ")
        const nextBegun = executions.get(`${runId} ${Number(n) + 1}`)?.[0]?.begin
        for (let k = 1; k < list.length; k++) {
          const again = list[k]!.begin
          const completedBefore = list.slice(0, k).some((e) => {
            if (e.end === undefined) return false
            // the run went on to its next step: the workflow had this step's stored result
            if (nextBegun !== undefined && nextBegun > e.end && nextBegun < again) return true
            return runningTimeAfter(e.pid, e.end, again) > IN_FLIGHT_MARGIN_MS
          })
          if (completedBefore) {
            reExecuted++
            const rel = (t: number | undefined) => (t === undefined ? null : t - killedAt)
            reExecutedDetail.push({
              key,
              nextStepBeganAt: rel(nextBegun),
              executions: list.map((e) => ({ pid: e.pid, begin: rel(e.begin), end: rel(e.end) }))
            })
          } else if (list[0]!.pid === killedPid) reRunInFlight++
        }
      }

      const resumeDelays = firstAfterKill.map((time) => time - killedAt)
      const summary = {
        runs: RUNS,
        cancelled: cancelledRuns,
        lost,
        duplicated,
        outOfOrder,
        gaps,
        reExecuted,
        garbledMessages: garbled,
        streamsRepeatedAfterStepEnd,
        stepsReRunInFlightAtKill: reRunInFlight,
        streamsRestarted: restarts,
        startAll50Ms: startMs,
        allEndedMs: endedMs,
        killedWorkerRuns: firstAfterKill.length,
        killToNextEventMs:
          resumeDelays.length === 0 ? null : { min: Math.min(...resumeDelays), max: Math.max(...resumeDelays) },
        stoppedForMs: resumedAt - stoppedAt,
        // times relative to the kill, ms: stopped, resumed, and the first re-executions
        stoppedAt: stoppedAt - killedAt,
        resumedAt: resumedAt - killedAt,
        reExecutedDetail: reExecutedDetail.slice(0, 6)
      }
      process.stdout.write(`\nruns chaos: ${JSON.stringify(summary)}\n`)
      expect(cancelledRuns).toBe(10)
      expect({ lost, duplicated, outOfOrder, gaps, reExecuted, garbled }).toEqual({
        lost: 0,
        duplicated: 0,
        outOfOrder: 0,
        gaps: 0,
        reExecuted: 0,
        garbled: 0
      })
      // the kill happened mid-run for some runs and mid-step for some steps, or the test proved nothing
      expect(firstAfterKill.length).toBeGreaterThan(0)
      expect(reRunInFlight).toBeGreaterThan(0)
      expect(restarts).toBeGreaterThan(0)
      passed = true
    }, 180_000)
  })
}
