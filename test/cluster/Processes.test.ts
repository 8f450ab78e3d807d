/**
 * `tidings serve --processes 4` on a private Redis, through the real CLI: clients are connected one at a time
 * until each of the 4 processes holds at least one (each process's share is read from
 * `tidings_process_connections_open{process}` in the node's summed `/metrics`); events published over HTTP reach
 * every client once and in order. Then one process is SIGKILLed (its pid from `tidings_process_ready`): the
 * primary restarts it, `/readyz` is 503 until it is back, its clients reconnect and resume — every client still
 * holds every event once, in order, including those published while the process was down. SIGTERM to the
 * primary then drains every process and it exits 0 once all are gone.
 * With the memory transport `--processes 2` is refused with one line and exit code 2.
 */
import { once } from "node:events"
import { createServer } from "node:net"
import { afterAll, describe, expect, it } from "vitest"
import * as Client from "../../src/client/node.ts"
import { AgentProtocol } from "../../src/protocol/agent/index.ts"
import { kernelBalancingAvailable } from "../../src/server/processes/index.ts"
import { sign } from "../server/support/testServer.ts"
import { freePort } from "../support/freePort.ts"
import { type Broker, brokerBinary, startBroker } from "./support/brokers.ts"
import {
  CLI_SCRIPT,
  cleanEnv,
  killAll,
  type NodeProcess,
  readyz,
  runToExit,
  sleep,
  spawnNode
} from "./support/cluster.ts"

const SECRET = "test-secret-0123456789-abcdefghij"
const API_KEY = "processes-test-api-key"
const PROCESSES = 4
const CHANNEL = "run:processes"

/** Waits until `check` answers something other than undefined, polling every 50 ms; fails naming `what`. */
const poll = async <A>(what: string, check: () => Promise<A | undefined> | A | undefined, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const answer = await check()
    if (answer !== undefined) return answer
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`)
    await sleep(50)
  }
}

/** `metric{process="k",…} value` lines of a scrape, by process index (the first label). */
const byProcess = (text: string, metric: string) => {
  const found = new Map<number, { readonly labels: string; readonly value: number }>()
  for (const match of text.matchAll(new RegExp(`^${metric}\\{process="(\\d+)"([^}]*)\\} (\\S+)$`, "gm"))) {
    found.set(Number(match[1]), { labels: match[2]!, value: Number(match[3]) })
  }
  return found
}

interface Watcher {
  readonly name: string
  readonly client: ReturnType<typeof Client.make<typeof AgentProtocol, 2>>
  /** The `n` of every event received, in arrival order. */
  readonly received: Array<number>
  readonly states: Array<string>
  process: number
}

const watch = (name: string, url: string): Watcher => {
  const client = Client.make(AgentProtocol, {
    url,
    version: 2,
    token: () => sign({ sub: name, channels: ["run:*"] }),
    backoff: { initialDelayMs: 100, maxDelayMs: 500 }
  })
  const watcher: Watcher = { name, client, received: [], states: [], process: -1 }
  client.on("status", (data) => {
    watcher.received.push(Number(data.detail))
  })
  client.onState((state) => {
    watcher.states.push(state)
  })
  return watcher
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

const brokerMissing = brokerBinary("redis", "tidings serve --processes")

describe.skipIf(brokerMissing === undefined)("tidings serve --processes 4 over redis", () => {
  let broker: Broker | undefined
  let node: NodeProcess | undefined
  const watchers: Array<Watcher> = []

  afterAll(async () => {
    for (const w of watchers) w.client.close()
    await killAll()
    await broker?.close()
  })

  it("a client on each process gets every event once, in order, through a SIGKILLed process's restart", async () => {
    const t0 = performance.now()
    broker = await startBroker("redis", brokerMissing!)
    const port = await freePort()
    node = await spawnNode({
      name: "tidings serve --processes 4",
      script: CLI_SCRIPT,
      args: ["serve", "--processes", String(PROCESSES), "--port", String(port), "--jwt-secret", SECRET],
      port,
      env: cleanEnv({ ...broker.env("processes"), TIDINGS_API_KEY: API_KEY }),
      readyTimeoutMs: 45_000
    })
    const upMs = performance.now() - t0
    // each process listens itself where Node has SO_REUSEPORT (22.12+), else the primary accepts and hands over
    const balancing = kernelBalancingAvailable() ? "kernel" : "primary"
    expect(node.output()).toContain(`(${balancing} balancing)`)
    // "" when the scrape's connection was on the process just killed: the polls ask again
    const metrics = () =>
      fetch(`${node!.http}/metrics`).then(
        (r) => r.text(),
        () => ""
      )
    const connectionsOf = async () => byProcess(await metrics(), "tidings_process_connections_open")
    const total = (counts: Map<number, { readonly value: number }>) =>
      [...counts.values()].reduce((sum, c) => sum + c.value, 0)

    // one client at a time, each attributed to the process whose connection count grew
    const covered = new Set<number>()
    while (covered.size < PROCESSES) {
      // round-robin (primary balancing) reaches all 4 with 4 clients; the kernel (SO_REUSEPORT) spreads them by a
      // hash of the addresses: all 4 are reached within 40 unless about 1 in 25,000 (4 × 0.75^40)
      expect(watchers.length, "4 processes should be reached within 40 connections").toBeLessThan(40)
      const before = await connectionsOf()
      const watcher = watch(`watcher-${watchers.length}`, node.url)
      watchers.push(watcher)
      await watcher.client.subscribe(CHANNEL, { fromStart: true }).ready()
      const after = await poll("the new connection in /metrics", async () => {
        const counts = await connectionsOf()
        return total(counts) === watchers.length ? counts : undefined
      })
      const grown = [...after].filter(([k, c]) => c.value > (before.get(k)?.value ?? 0)).map(([k]) => k)
      expect(grown).toHaveLength(1)
      watcher.process = grown[0]!
      covered.add(watcher.process)
    }
    expect(covered).toEqual(new Set(range(0, PROCESSES - 1)))

    let publishRetries = 0
    const publish = async (n: number) => {
      for (let attempt = 0; ; attempt++) {
        const status = await fetch(`${node!.http}/v1/channels/${CHANNEL}/events`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${API_KEY}`,
            "content-type": "application/json",
            // a retry after a lost answer (its process killed) must not append twice
            "idempotency-key": `event-${n}`
          },
          body: JSON.stringify({ event: "status", data: { phase: "thinking", detail: String(n) } })
        }).then(
          (r) => r.status,
          () => 0
        )
        if (status === 200) return
        if (attempt >= 50) throw new Error(`publish ${n}: ${status}`)
        publishRetries++
        await sleep(50)
      }
    }
    const everyoneHas = (n: number) => (watchers.every((w) => w.received.length >= n) ? true : undefined)

    for (const n of range(1, 20)) await publish(n)
    await poll("20 events at every client", () => everyoneHas(20))
    for (const w of watchers) expect(w.received, w.name).toEqual(range(1, 20))

    // SIGKILL one process, publish while it is down, and wait for the primary to bring it back
    const victim = watchers[0]!.process
    const readyBefore = byProcess(await metrics(), "tidings_process_ready")
    const victimPid = Number(/pid="(\d+)"/.exec(readyBefore.get(victim)!.labels)![1])
    expect(victimPid).toBeGreaterThan(0)
    expect(victimPid).not.toBe(node.pid)
    const killedAt = performance.now()
    process.kill(victimPid, "SIGKILL")
    const notReady = await poll("/readyz 503 while a process is down", async () =>
      (await readyz(node!.http)) === 503 ? true : undefined
    )
    expect(notReady).toBe(true)
    for (const n of range(21, 40)) await publish(n)
    const restarted = await poll(
      "the victim restarted and ready",
      async () => {
        const text = await metrics()
        const ready = byProcess(text, "tidings_process_ready").get(victim)
        const restarts = byProcess(text, "tidings_process_restarts_total").get(victim)
        const pid = ready ? Number(/pid="(\d+)"/.exec(ready.labels)![1]) : victimPid
        return ready?.value === 1 && pid !== victimPid && restarts?.value === 1 ? pid : undefined
      },
      40_000
    )
    const restartMs = performance.now() - killedAt
    expect(await readyz(node.http)).toBe(200)
    for (const n of range(41, 50)) await publish(n)
    await poll("50 events at every client", () => everyoneHas(50), 20_000)
    await sleep(300) // a late duplicate, if any, would arrive now

    const onVictim = watchers.filter((w) => w.process === victim)
    console.log(
      `tidings serve --processes ${PROCESSES} (${balancing} balancing): ready in ${Math.round(upMs)} ms; ${watchers.length} clients ` +
        `(${[...covered].map((k) => `${watchers.filter((w) => w.process === k).length} on process ${k}`).join(", ")}); ` +
        `process ${victim} (pid ${victimPid}) SIGKILLed, ready again as pid ${restarted} after ${Math.round(restartMs)} ms; ` +
        `${publishRetries} publish retries`
    )
    expect(onVictim.length).toBeGreaterThan(0)
    for (const w of onVictim) expect(w.states, `${w.name} reconnected`).toContain("reconnecting")
    for (const w of watchers) {
      expect(w.received, `${w.name}: every event once, in order`).toEqual(range(1, 50))
      expect(w.states.at(-1), w.name).toBe("open")
    }

    // SIGTERM to the primary drains every process; it exits once they all have
    for (const w of watchers) w.client.close()
    const pids = byProcess(await metrics(), "tidings_process_ready")
    const workerPids = [...pids.values()].map((p) => Number(/pid="(\d+)"/.exec(p.labels)![1]))
    expect(workerPids).toHaveLength(PROCESSES)
    const exit = await node.kill("SIGTERM")
    expect(exit, node.output()).toEqual({ code: 0, signal: null })
    const alive = workerPids.filter((pid) => {
      try {
        process.kill(pid, 0)
        return true
      } catch {
        return false
      }
    })
    expect(alive).toEqual([])
  }, 150_000)
})

describe("tidings serve --processes with the memory transport", () => {
  it("refuses with one line on stderr and exit code 2", async () => {
    const result = await runToExit({
      name: "tidings serve --processes 2 (memory)",
      script: CLI_SCRIPT,
      args: ["serve", "--processes", "2", "--port", String(await freePort())],
      env: cleanEnv({}),
      timeoutMs: 30_000
    })
    const output = `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`
    const lines = result.stderr.trim().split("\n")
    expect(result.code, output).toBe(2)
    expect(lines, output).toHaveLength(1)
    expect(lines[0]).toMatch(/^tidings: --processes 2 needs a shared transport \(--transport redis or nats\)/)
  }, 60_000)
})

describe("tidings serve --processes with kernel balancing on a port already in use", () => {
  // only where this Node balances with SO_REUSEPORT (CI's Node 24 run); elsewhere the primary's own bind fails
  it.runIf(kernelBalancingAvailable())(
    "exits 1 naming the port instead of sharing it with the other listener",
    async () => {
      const port = await freePort()
      // another node's process, as a kernel-balanced one listens: with SO_REUSEPORT, so that a bind with it succeeds
      const other = createServer().listen({ port, host: "127.0.0.1", reusePort: true })
      await once(other, "listening")
      try {
        const result = await runToExit({
          name: "tidings serve --processes 2 (port in use)",
          script: CLI_SCRIPT,
          args: ["serve", "--processes", "2", "--transport", "redis", "--redis-url", "redis://127.0.0.1:1"],
          env: cleanEnv({ TIDINGS_PORT: String(port) }),
          timeoutMs: 30_000
        })
        const output = `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`
        expect(result.code, output).toBe(1)
        expect(result.stderr, output).toContain(`tidings: port ${port} on 127.0.0.1 is already in use`)
      } finally {
        other.close()
      }
    },
    60_000
  )
})
