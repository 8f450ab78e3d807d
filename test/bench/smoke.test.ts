/**
 * Keeps the bench harness from rotting: runs `bench/run.ts` end to end on a very small load (a 20-client
 * fan-out step against tidings on the memory transport, and a resume of 20 clients that missed 200 events) and
 * checks that it produced sane numbers — deliveries received, nothing lost, duplicated or missing, every client
 * caught up — and a report. It never checks latency (CI machines are noisy); `npm run bench` does that.
 */
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { scanAgrees } from "../../bench/loadgen/TidingsClient.ts"
import type { RunResult } from "../../bench/results.ts"
import { encodeEventFrame } from "../../src/protocol/EventFrame.ts"

const out = mkdtempSync(join(tmpdir(), "tidings-bench-smoke-"))
afterAll(() => rmSync(out, { recursive: true, force: true }))

const runBench = (args: ReadonlyArray<string>): Promise<{ code: number | null; output: string }> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "bench/run.ts", ...args], {
      cwd: join(import.meta.dirname, "../.."),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout.on("data", (c: Buffer) => (output += c.toString()))
    child.stderr.on("data", (c: Buffer) => (output += c.toString()))
    child.on("exit", (code) => resolve({ code, output }))
  })

describe("bench smoke", () => {
  it("reads event frames without JSON.parse exactly as JSON.parse does", () => {
    const data = JSON.stringify({ s: 3, i: 41, t: 1_763_000_000_123.457, m: 1, p: "xxxx" })
    const frame = encodeEventFrame({ channel: "bench:fanout", epoch: "e-1", offset: 1234, time: 1 }, "tick", data)
    expect(scanAgrees(frame)).toBe(true)
  })

  it("runs a tiny fan-out and resume end to end with sane numbers", { timeout: 30_000 }, async () => {
    const { code, output } = await runBench([
      "--scenario",
      "fanout,replay",
      "--server",
      "tidings",
      "--clients",
      "20",
      "--rates",
      "50",
      "--step-ms",
      "800",
      "--warmup-ms",
      "200",
      "--drain-ms",
      "3000",
      "--unpaced-ms",
      "0",
      "--retries",
      "0",
      "--quiet-wait-ms",
      "0",
      "--missed",
      "200",
      "--out",
      out,
      "--deadline-s",
      "60"
    ])
    expect(code, output).toBe(0)
    const run = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as RunResult
    expect(existsSync(join(out, "report.html"))).toBe(true)
    const fan = run.results.find((r) => r.scenario === "fanout")!
    expect(fan.status, fan.reason).toBe("ok")
    expect(fan.setup?.opened).toBe(20)
    const step = fan.steps![0]!
    expect(step.received).toBeGreaterThan(0)
    expect(step.latency.count).toBeGreaterThan(0)
    expect(step.lost).toBe(0)
    expect(step.duplicated).toBe(0)
    expect(step.missing).toBe(0)
    expect(step.closes).toBe(0)
    const replay = run.results.find((r) => r.scenario === "replay")!
    expect(replay.status, replay.reason).toBe("ok")
    expect(replay.recovery?.replayed).toBe(20 * 200)
    expect(replay.recovery?.lost).toBe(0)
    expect(replay.recovery?.duplicated).toBe(0)
    expect(replay.recovery?.failed).toBe(0)
  })
})
