/**
 * The 100,000-connection hold, small enough for CI: `bench/run.ts --scenario hold` with CLIENTS clients over
 * two tidings server processes (bench/primary.ts, node:cluster, as `tidings serve --processes 2`) on a private
 * Redis, holding them through a short 2 event/s broadcast. Checks that every client connected, stayed connected
 * and received every event once, that both processes held connections, and that the load generator spread its
 * sockets as the 100,000 run needs (workers under the file limit, source addresses off 127.0.0.1). Never checks
 * latency or rates (CI machines are noisy); docs/performance.md has the full run's figures.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { MAX_SOCKETS_PER_WORKER } from "../../bench/loadgen/LoadGen.ts"
import { SOURCE_ADDRESSES, sourceAddressOf } from "../../bench/loadgen/sourceAddress.ts"
import { workersFor } from "../../bench/plan.ts"
import type { RunResult } from "../../bench/results.ts"
import { requireBinary } from "../support/requireBinary.ts"
import { runBench } from "./support/runBench.ts"

/** Clients of the CI run (see docs/performance.md, "100,000 connections", for why not 20,000). */
const CLIENTS = 10_000

const out = mkdtempSync(join(tmpdir(), "tidings-bench-hold-"))
afterAll(() => rmSync(out, { recursive: true, force: true }))

describe("bench hold over several server processes", () => {
  it("sizes load generators under the file limit and spreads sources over 127.0.0.2 and up", () => {
    expect(workersFor(100_000, undefined)).toBeGreaterThanOrEqual(Math.ceil(100_000 / MAX_SOCKETS_PER_WORKER))
    expect(workersFor(1000, undefined)).toBe(1)
    expect(() => workersFor(100_000, 2)).toThrow(/need at least 7/)
    const sources = new Set(Array.from({ length: 100_000 }, (_, i) => sourceAddressOf(i, "127.0.0.1")))
    expect(sources.size).toBe(SOURCE_ADDRESSES)
    expect(sources.has("127.0.0.1")).toBe(false)
    expect(sourceAddressOf(0, "10.0.0.5")).toBeUndefined()
  })

  const redis = requireBinary("redis-server", "bench hold")
  it.skipIf(!redis)(
    `holds ${CLIENTS} clients over 2 server processes and delivers every event to each`,
    {
      timeout: 90_000
    },
    async () => {
      const { code, output } = await runBench([
        "--scenario",
        "hold",
        "--server",
        "tidings",
        "--transport",
        "redis",
        "--server-processes",
        "2",
        "--clients",
        String(CLIENTS),
        "--duration-ms",
        "3000",
        "--rate",
        "2",
        "--drain-ms",
        "20000",
        "--out",
        out,
        "--deadline-s",
        "85"
      ])
      expect(code, output).toBe(0)
      const run = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as RunResult
      const hold = run.results[0]!
      expect(hold.status, hold.reason).toBe("ok")
      expect(hold.setup?.opened).toBe(CLIENTS)
      const step = hold.steps![0]!
      expect(step.expected).toBeGreaterThan(0)
      expect(step.expected % CLIENTS).toBe(0)
      expect(step.received, hold.notes.join("\n")).toBe(step.expected)
      expect([step.lost, step.duplicated, step.missing, step.closes]).toEqual([0, 0, 0, 0])
      expect(hold.headline?.value).toBe(CLIENTS)
      expect(hold.best, hold.notes.join("\n")).toBeDefined()
      const perProcess = hold.serverStats?.perProcess as ReadonlyArray<{ connections: number }>
      expect(perProcess).toHaveLength(2)
      for (const p of perProcess) expect(p.connections).toBeGreaterThan(0)
      expect(perProcess.reduce((s, p) => s + p.connections, 0)).toBe(CLIENTS)
    }
  )
})
