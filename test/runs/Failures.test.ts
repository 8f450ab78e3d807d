/**
 * Runs fail answered, not hung (separate processes of the steps application, support/node.ts, on PostgreSQL and
 * Redis):
 * - no worker up: `start` fails with `unavailable` (and a retry delay) within the configured bound, and the run it
 *   gave up on never runs, not even when a worker comes up later;
 * - the database blackholed (SIGSTOP) or stopped: the gateway stays up and keeps serving sockets, run commands fail
 *   `unavailable` within their bound, `/readyz` says 503 and why, at once; when the database is back, so are runs,
 *   and a run that was waiting at its checkpoint finishes;
 * - a worker stopped gracefully (SIGTERM) mid-run: its runs are not cancelled but move to the other worker.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, afterEach, describe, expect, it } from "vitest"
import { type Broker, brokerBinary, startBroker } from "../cluster/support/brokers.ts"
import { killAll, readyz, sleep, spawnNode } from "../cluster/support/cluster.ts"
import { connectRaw, type RawClient } from "../server/support/rawClient.ts"
import { SECRET, sign } from "../server/support/testServer.ts"
import { freePort } from "../support/freePort.ts"
import { type PostgresServer, requirePostgres, startPostgresServer } from "../support/postgresServer.ts"

const NODE = fileURLToPath(new URL("./support/node.ts", import.meta.url))
const postgres = requirePostgres("Runs under failures")
const redisBinary = brokerBinary("redis", "Runs under failures")

const connect = async (url: string): Promise<RawClient> => {
  const client = await connectRaw(url, { protocols: ["tidings.steps.v1.json"] })
  client.send({ type: "authenticate", token: await sign({ sub: "ann", channels: ["run:*"] }) })
  await client.next((f) => f.type === "welcome")
  return client
}

let ids = 0
const command = async (client: RawClient, name: string, payload: object, timeoutMs = 30_000) => {
  const id = `f${++ids}`
  const sent = performance.now()
  client.send({ type: "command", id, name, payload })
  const frame = await client.next((f) => (f.type === "reply" || f.type === "error") && f.id === id, timeoutMs)
  return { frame, ms: performance.now() - sent }
}

/** `GET /readyz`: its status, body and how long it took. */
const probe = async (http: string) => {
  const sent = performance.now()
  const response = await fetch(`${http}/readyz`, { signal: AbortSignal.timeout(2000) })
  const body = (await response.json()) as Record<string, unknown>
  return { status: response.status, body, ms: performance.now() - sent }
}

if (postgres === undefined || redisBinary === undefined) {
  describe.skip("runs under failures (PostgreSQL or redis-server not installed)", () => {
    it("skipped", () => {})
  })
} else {
  describe("runs under failures", () => {
    let broker: Broker | undefined
    let database: PostgresServer | undefined
    const dir = mkdtempSync(join(tmpdir(), "tidings-failures-"))
    const clients: Array<RawClient> = []
    let test = 0

    const setUp = async () => {
      broker ??= await startBroker("redis", redisBinary)
      database = await startPostgresServer(postgres)
      const sideEffects = join(dir, `side-effects-${++test}.log`)
      const env = {
        ...broker.env(`failures-${test}`),
        TIDINGS_DATABASE_URL: database.url,
        TIDINGS_JWT_SECRET: SECRET,
        SIDE_EFFECTS: sideEffects,
        STEP_MS: "200",
        START_TIMEOUT_MS: "1500"
      }
      const worker = async (name: string) =>
        spawnNode({
          name,
          script: NODE,
          env: { ...env, ROLE: "worker", TIDINGS_RUNNER_PORT: String(await freePort()) }
        })
      const gateway = () => spawnNode({ name: "gateway", script: NODE, env: { ...env, ROLE: "gateway" } })
      const client = async (url: string) => {
        const c = await connect(url)
        clients.push(c)
        return c
      }
      return { env, sideEffects, worker, gateway, client, database }
    }

    afterEach(async () => {
      for (const c of clients.splice(0)) c.close()
      await killAll()
      await database?.dispose()
      database = undefined
    })

    afterAll(async () => {
      await broker?.close()
      rmSync(dir, { recursive: true, force: true })
    })

    it("no worker up: start answers unavailable within its bound, and that run never runs", async () => {
      const { worker, gateway, client, sideEffects } = await setUp()
      // a worker creates the cluster's tables, then leaves: none is up when the start comes
      const first = await worker("worker (setup)")
      await first.kill("SIGTERM")
      const g = await gateway()
      const c = await client(g.url)
      const { frame, ms } = await command(c, "start", { steps: 2, checkpointAfter: 9 })
      process.stdout.write(`\nno worker: start answered ${frame.code} in ${Math.round(ms)} ms\n`)
      expect(frame).toMatchObject({ type: "error", code: "unavailable" })
      expect(frame.retryAfterMs).toBeGreaterThan(0)
      expect(frame.message).toMatch(/no worker began the run within 1500 ms/)
      expect(ms).toBeGreaterThanOrEqual(1400)
      expect(ms).toBeLessThan(5000)
      // a worker comes up: the start it gave up on must not run now
      await worker("worker")
      await sleep(3000)
      expect(existsSync(sideEffects) ? readFileSync(sideEffects, "utf8") : "").toBe("")
      // and new starts work
      const { frame: again } = await command(c, "start", { steps: 1, checkpointAfter: 9 })
      expect(again).toMatchObject({ type: "reply", ok: true })
      const channel = (again.result as { channel: string }).channel
      c.send({ type: "subscribe", channel, fromStart: true })
      await c.next((f) => f.type === "event" && f.channel === channel && f.event === "done", 20_000)
    })

    for (const fault of ["blackholed", "stopped"] as const) {
      it(`database ${fault}: the gateway stays up, run commands answer unavailable, /readyz says why at once`, async () => {
        const { worker, gateway, client, database: db } = await setUp()
        await worker("worker")
        const g = await gateway()
        const c = await client(g.url)
        // a run that waits at its checkpoint through the outage
        const { frame: started } = await command(c, "start", { steps: 2, checkpointAfter: 1 })
        const run = started.result as { runId: string; channel: string }
        c.send({ type: "subscribe", channel: run.channel, fromStart: true })
        await c.next((f) => f.type === "event" && f.channel === run.channel && f.event === "waiting", 20_000)
        expect((await probe(g.http)).status).toBe(200)

        if (fault === "blackholed") db.pause()
        else await db.stop()
        // readiness follows within its check interval, and every probe answers at once
        const probes: Array<{ status: number; ms: number; body: Record<string, unknown> }> = []
        const deadline = Date.now() + 5000
        while (Date.now() < deadline) {
          const p = await probe(g.http)
          probes.push(p)
          if (p.status === 503) break
          await sleep(100)
        }
        const notReady = probes.at(-1)!
        expect(notReady.status).toBe(503)
        expect(String(notReady.body.runs)).toMatch(/run storage/)
        const slowest = Math.max(...probes.map((p) => p.ms))
        expect(slowest).toBeLessThan(250)

        const start = await command(c, "start", { steps: 1, checkpointAfter: 9 })
        const cancel = await command(c, "cancel", { runId: run.runId })
        const answer = await command(c, "answer", { runId: run.runId, answer: "yes" })
        process.stdout.write(
          `\ndatabase ${fault}: /readyz 503 (${notReady.body.runs}) after ${probes.length} probes, slowest ${Math.round(slowest)} ms; ` +
            `start ${start.frame.code} in ${Math.round(start.ms)} ms, cancel ${cancel.frame.code} in ${Math.round(cancel.ms)} ms, ` +
            `answer ${answer.frame.code} in ${Math.round(answer.ms)} ms\n`
        )
        for (const { frame, ms } of [start, cancel, answer]) {
          expect(frame).toMatchObject({ type: "error", code: "unavailable" })
          expect(frame.retryAfterMs).toBeGreaterThan(0)
          expect(ms).toBeLessThan(5000)
        }
        // the gateway still serves sockets: a new client connects and subscribes
        const other = await client(g.url)
        other.send({ type: "subscribe", channel: "run:anything" })
        expect(await other.next((f) => f.type === "subscribed")).toMatchObject({ channel: "run:anything" })

        if (fault === "blackholed") db.resume()
        else await db.start()
        const back = Date.now() + 15_000
        while ((await readyz(g.http)) !== 200 && Date.now() < back) await sleep(100)
        expect(await readyz(g.http)).toBe(200)
        // the run that waited at its checkpoint through the outage finishes
        let answered = await command(c, "answer", { runId: run.runId, answer: "yes" })
        for (let tries = 0; answered.frame.type === "error" && tries < 20; tries++) {
          await sleep(500)
          answered = await command(c, "answer", { runId: run.runId, answer: "yes" })
        }
        expect(answered.frame).toMatchObject({ type: "reply", ok: true })
        await c.next((f) => f.type === "event" && f.channel === run.channel && f.event === "done", 30_000)
      })
    }

    it("a worker stopped gracefully mid-run: its runs move to the other worker, not cancelled", async () => {
      const { worker, gateway, client } = await setUp()
      const workers = [await worker("worker 1"), await worker("worker 2")]
      const g = await gateway()
      const c = await client(g.url)
      const runs = await Promise.all(
        Array.from({ length: 6 }, async () => {
          const { frame } = await command(c, "start", { steps: 8, checkpointAfter: 0 })
          return frame.result as { runId: string; channel: string }
        })
      )
      for (const run of runs) c.send({ type: "subscribe", channel: run.channel, fromStart: true })
      await sleep(600)
      // stop the worker that executes the first run
      const first = c.events(runs[0]!.channel)[0]!.data as { pid: number }
      const stopping = workers.find((w) => w.pid === first.pid)!
      const exit = await stopping.kill("SIGTERM")
      // it shut down by itself (the test node exits 130 on an interrupt, as NodeRuntime.runMain does)
      expect(exit.signal, stopping.output()).toBeNull()
      for (const run of runs) {
        const end = await c.next(
          (f) => f.type === "event" && f.channel === run.channel && (f.event === "done" || f.event === "cancelled"),
          60_000
        )
        expect(end.event).toBe("done")
      }
      const moved = runs.filter((run) => {
        const pids = new Set(c.events(run.channel).map((e) => (e.data as { pid: number }).pid))
        return pids.size > 1
      })
      expect(moved.length).toBeGreaterThan(0)
    })
  })
}
