/**
 * The broker's own failover on Redis: a private primary, one replica and three sentinels (test/support/
 * redisSentinel.ts: down-after 1000 ms, failover-timeout 5000 ms). The Redis transport finds the primary through
 * the sentinels. Publishers append steadily to 8 channels, each append with an idempotency key and retried with the
 * same key until acknowledged; the primary is killed with SIGKILL under that load; the sentinels promote the
 * replica and the transport follows. Then every channel is read back from the new primary.
 *
 * Once every sentinel names the promoted replica and it says it is the primary, the old primary is restarted
 * (empty) as a replica of it, with replica-priority 0 — never as an empty primary, and never a candidate for
 * promotion before it has synced: either would make the others sync from an empty data set.
 *
 * - With `replicatedAcks` (WAIT 1 after every append): 0 acknowledged appends lost, none twice. Between the kill and
 *   the old primary's return as a replica nothing can be acknowledged (no replica confirms): the stall includes it.
 * - Without it: the test prints what was lost (acknowledged by the old primary, never replicated). On one machine
 *   the replica is rarely behind at a plain SIGKILL, so a second scenario cuts the replica's link 300 ms before
 *   the kill (the replica is pointed elsewhere, as on a network blip): without WAIT the appends acknowledged in
 *   those 300 ms are lost (asserted > 0); with WAIT they were never acknowledged, and none is lost.
 *
 * - With two replicas and WAIT 1: 0 lost, and the stall is the failover's only: the replica not promoted follows the
 *   new primary (a partial resync) and confirms again at once.
 *
 * Before the failover it measures publish latency (p50/p99) of 2,000 sequential appends in each mode on the healthy
 * setup: the cost of WAIT.
 */
import { Effect, Exit, Scope } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import * as Redis from "../../src/transports/Redis.ts"
import type { TransportShape } from "../../src/transports/Transport.ts"
import { freePort } from "../support/freePort.ts"
import { type RedisSentinelSetup, startRedisSentinel } from "../support/redisSentinel.ts"
import { sendCommand } from "../support/redisServer.ts"
import { requireBinary } from "../support/requireBinary.ts"

const CHANNELS = 8
const ms = (n: number) => `${n < 10 ? n.toFixed(2) : Math.round(n)} ms`
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const percentile = (values: ReadonlyArray<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0
}

const binary = requireBinary("redis-server", "Redis Sentinel failover")

const openTransport = async (setup: RedisSentinelSetup, keyPrefix: string, replicated: boolean) => {
  const scope = Effect.runSync(Scope.make())
  const transport = await Effect.runPromise(
    Scope.provide(
      Redis.make({
        sentinels: setup.sentinels.map((s) => ({ host: "127.0.0.1", port: s.port })),
        sentinelName: setup.name,
        keyPrefix,
        ...(replicated ? { replicatedAcks: { replicas: 1, timeoutMs: 1000 } } : {})
      }),
      scope
    )
  )
  return { transport, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

const publication = (n: number) => ({ event: "tick", data: JSON.stringify({ n }), version: 1, time: Date.now() })

/** Appends 1, 2, 3 … to `channel` one after the other, each retried with its idempotency key until acknowledged. */
const publishLoop = (transport: TransportShape, channel: string, state: { stop: boolean }, acks: Array<number>) => {
  const acked: Array<number> = []
  const failures: Array<string> = []
  const done = (async () => {
    for (let n = 1; !state.stop; n++) {
      const first = performance.now()
      for (;;) {
        const exit = await Effect.runPromiseExit(
          transport.append(channel, publication(n), { idempotencyKey: `${channel}:${n}` })
        )
        if (Exit.isSuccess(exit)) break
        if (failures.length < 200) failures.push(String(exit.cause).slice(0, 200))
        if (performance.now() - first > 40_000) throw new Error(`append ${channel} #${n} failing for 30 s`)
        await sleep(50)
      }
      acked.push(n)
      acks.push(performance.now())
    }
  })()
  return { acked, failures, done }
}

/** What the sentinels decided and what the data nodes did about replication, to explain a loss. */
const failoverLog = (setup: RedisSentinelSetup, restarted: { readonly port: number; readonly log: () => string }) => {
  const pick = (name: string, log: string, pattern: RegExp) =>
    log
      .split("\n")
      .filter((line) => pattern.test(line))
      .map((line) => `  ${name}: ${line.trim()}`)
  const events =
    /[+-](sdown|odown|switch-master|promoted-slave|failover|selected-slave|slave |convert-to-slave|fix-slave|reboot|role-change|elected|try-failover|vote|new-epoch)/
  const data =
    /MASTER|REPLICAOF|SLAVE OF|Full resync|MASTER <-> REPLICA|Discarding|Flushing|Loading|PSYNC|replication ID|primary|master mode/i
  return [
    "failover log:",
    ...setup.sentinels.flatMap((s, i) => pick(`sentinel ${i} (${s.port})`, s.log(), events)),
    ...setup.replicas.flatMap((r, i) => pick(`replica ${i} (${r.port})`, r.log(), data)),
    ...pick(`old primary killed (${setup.primary.port})`, setup.primary.log(), data),
    ...pick(`old primary restarted (${restarted.port})`, restarted.log(), data)
  ].join("\n")
}

const readAll = async (transport: TransportShape, channel: string) => {
  const result = await Effect.runPromise(transport.read(channel, undefined, 100_000))
  return result.entries.map((e) => (JSON.parse(e.data) as { n: number }).n)
}

/**
 * Runs alone, after the rest of the suite (`npm run test:failover`, which `npm test` ends with): in two full-suite
 * runs on a loaded machine its WAIT case lost every acknowledged append (the surviving node's data set was
 * replaced) and what replaced it was not recorded. Killed servers here restart on their own port, which a
 * parallel test could take meanwhile (test/support/freePort.ts now picks below the ephemeral range for that
 * reason); alone, that cannot happen. A loss now prints the sentinels' and the servers' own account of it.
 */
const alone = process.env.TIDINGS_FAILOVER_TESTS === "1"
if (!alone) {
  describe.skip("Redis Sentinel failover: runs alone, `npm run test:failover`", () => {
    it("skipped here", () => {})
  })
}

describe.skipIf(binary === undefined || !alone)("Redis Sentinel: the primary is killed under load", () => {
  const setups: Array<RedisSentinelSetup> = []
  const closers: Array<() => Promise<void>> = []
  afterAll(async () => {
    for (const close of closers) await close().catch(() => {})
    for (const setup of setups) await setup.close()
  })

  const cases = [
    { replicated: true, cut: false, replicas: 1 },
    { replicated: false, cut: false, replicas: 1 },
    { replicated: false, cut: true, replicas: 1 },
    { replicated: true, cut: true, replicas: 1 },
    { replicated: true, cut: false, replicas: 2 }
  ]
  for (const { replicated, cut, replicas } of cases) {
    const mode = `${replicated ? "with replicated acks (WAIT 1)" : "without replicated acks"}, ${replicas} replica${replicas > 1 ? "s" : ""}`
    const scenario = cut ? "replica link cut 300 ms before the primary is SIGKILLed" : "primary SIGKILLed"
    it(`${mode}, ${scenario}: what an acknowledged append survives`, async () => {
      const setup = await startRedisSentinel({ binary: binary!, replicas })
      setups.push(setup)
      const { transport, close } = await openTransport(
        setup,
        `t-sentinel-${replicated ? "w" : "a"}${replicas}:`,
        replicated
      )
      closers.push(close)

      // the cost of WAIT: 2,000 sequential appends on the healthy setup
      const latencies: Array<number> = []
      for (let n = 1; n <= 2000; n++) {
        const t0 = performance.now()
        await Effect.runPromise(transport.append("latency", publication(n)))
        latencies.push(performance.now() - t0)
      }

      const state = { stop: false }
      const acks: Array<number> = []
      const loops = Array.from({ length: CHANNELS }, (_, i) => publishLoop(transport, `load:${i}`, state, acks))
      await sleep(1500)
      const oldPrimary = setup.primary.port
      if (cut) {
        // the replica stops replicating (it is pointed at a port where nothing listens), as on a network blip,
        // and the primary dies before the link is back: what it acknowledged meanwhile never reached the replica
        await sendCommand(setup.replica.port, ["REPLICAOF", "127.0.0.1", String(await freePort())])
        await sleep(300)
      }
      const killedAt = performance.now()
      await setup.primary.kill()
      let promotedAfter = Number.NaN
      let newPrimary = oldPrimary
      while (performance.now() - killedAt < 20_000) {
        // every sentinel names the new primary, and it says it is one: the failover is over
        const port = await setup.agreedPrimaryPort()
        const role =
          port !== undefined && port !== oldPrimary ? await sendCommand(port, ["ROLE"], 1000).catch(() => []) : []
        if (Array.isArray(role) && role[0] === "master") {
          promotedAfter = performance.now() - killedAt
          newPrimary = port!
          break
        }
        await sleep(100)
      }
      expect(promotedAfter).toBeLessThan(20_000)
      // the old primary comes back empty, so it comes back as a replica of the new one (never as an empty primary
      // the others could sync from, which Redis warns against); with replicated acks nothing can be acknowledged
      // until a replica confirms again
      // with replica-priority 0 (an operator lifts it once the node has synced): a replica that has not synced yet
      // reports master_link_down_since_seconds:-1, so a second failover could promote it, empty, and the others
      // would sync from it (docs/transports.md)
      const restarted = await setup.primary.restart([
        "--replicaof",
        "127.0.0.1",
        String(newPrimary),
        "--replica-priority",
        "0"
      ])
      closers.push(() => restarted.kill())
      // keep publishing until the transport writes to the new primary again, and a little after
      const ackedAtFailover = acks.length
      while (acks.length < ackedAtFailover + 200 && performance.now() - killedAt < 40_000) await sleep(50)
      state.stop = true
      await Promise.all(loops.map((l) => l.done))
      const gaps = acks.map((at, i) => (i === 0 ? 0 : at - acks[i - 1]!))
      const stall = Math.max(...gaps)

      let acked = 0
      let lost = 0
      let duplicated = 0
      const lostExamples: Array<string> = []
      for (let i = 0; i < CHANNELS; i++) {
        const log = await readAll(transport, `load:${i}`)
        const counts = new Map<number, number>()
        for (const n of log) counts.set(n, (counts.get(n) ?? 0) + 1)
        for (const n of loops[i]!.acked) {
          acked++
          const count = counts.get(n) ?? 0
          if (count === 0) {
            lost++
            if (lostExamples.length < 8) lostExamples.push(`load:${i} #${n}`)
          }
          if (count > 1) duplicated += count - 1
        }
      }
      const failures = loops.flatMap((l) => l.failures)
      console.log(
        [
          `Redis Sentinel failover ${mode}, ${scenario}: primary, ${replicas} replica(s), 3 sentinels (down-after 1000 ms, failover-timeout 5000 ms)`,
          `  publish latency on the healthy setup, 2,000 sequential appends: p50 ${ms(percentile(latencies, 0.5))}, p99 ${ms(percentile(latencies, 0.99))}`,
          `  primary SIGKILLed under load (${CHANNELS} publishers); sentinels named the new primary after ${ms(promotedAfter)}; longest publish stall ${ms(stall)}`,
          `  ${acked} appends acknowledged; LOST ${lost}${lostExamples.length > 0 ? ` (${lostExamples.join(", ")}…)` : ""}, DUPLICATED ${duplicated}; ` +
            `${failures.length} failed attempts (retried), e.g. ${failures[0] ?? "none"}`
        ].join("\n")
      )
      if ((replicated && lost > 0) || process.env.SENTINEL_LOG === "1") console.log(failoverLog(setup, restarted))
      expect(promotedAfter).toBeLessThan(20_000)
      expect(duplicated).toBe(0)
      if (replicated) expect(lost).toBe(0)
      // with the link cut, the appends acknowledged in those 300 ms are gone without WAIT
      if (!replicated && cut) expect(lost).toBeGreaterThan(0)
    }, 60_000)
  }
})
