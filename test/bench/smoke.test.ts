/**
 * Keeps the bench harness from rotting: runs `bench/run.ts` end to end on a very small load (a 20-client
 * fan-out step against tidings on the memory transport, the same with 20 SSE readers, and a resume of 20 clients
 * that missed 200 events) and checks that it produced sane numbers — deliveries received, nothing lost,
 * duplicated or missing, every client caught up — and a report. It never checks latency (CI machines are noisy);
 * `npm run bench` does that. The SSE reader's parser is checked against what the server writes, cut anywhere.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import type { ClientEnv } from "../../bench/loadgen/BenchClient.ts"
import { Recorder } from "../../bench/loadgen/Recorder.ts"
import { SseClient } from "../../bench/loadgen/SseClient.ts"
import { scanAgrees } from "../../bench/loadgen/TidingsClient.ts"
import type { RunResult } from "../../bench/results.ts"
import { encodeEventFrame } from "../../src/protocol/EventFrame.ts"
import { runBench } from "./support/runBench.ts"

const out = mkdtempSync(join(tmpdir(), "tidings-bench-smoke-"))
afterAll(() => rmSync(out, { recursive: true, force: true }))

describe("bench smoke", () => {
  it("reads event frames without JSON.parse exactly as JSON.parse does", () => {
    const data = JSON.stringify({ s: 3, i: 41, t: 1_763_000_000_123.457, m: 1, p: "xxxx" })
    const frame = encodeEventFrame({ channel: "bench:fanout", epoch: "e-1", offset: 1234, time: 1 }, "tick", data)
    expect(scanAgrees(frame)).toBe(true)
  })

  it("reads SSE messages as the server writes them, however the body is cut into chunks", () => {
    const tick = (i: number) => JSON.stringify({ s: 7, i, t: 1_763_000_000_000.25 + i, m: 1, p: "xx" })
    const body =
      "retry: 1000\n\n" +
      [0, 1, 2].map((i) => `id: e-1:${10 + i}\nevent: tick\ndata: ${tick(i)}\n\n`).join("") +
      ": ping\n\n" +
      `id: e-1:13\nevent: tick\ndata: ${tick(3)}\n\n` +
      `event: reset\ndata: {"reason":"trimmed"}\n\n`
    for (const size of [1, 2, 7, 64, body.length]) {
      const recorder = new Recorder()
      recorder.begin(7)
      const problems: Array<string> = []
      const env: ClientEnv = { recorder, unexpectedClose: () => undefined, problem: (what) => problems.push(what) }
      const client = new SseClient(0, "http://127.0.0.1:1", "token", "bench:fanout", env)
      for (let at = 0; at < body.length; at += size) client.onData(body.slice(at, at + size))
      expect(recorder.received, `chunks of ${size}`).toBe(4)
      expect(recorder.lost + recorder.duplicated).toBe(0)
      expect([client.offset, client.offsetGaps, client.offsetRepeats]).toEqual([13, 0, 0])
      expect(problems).toEqual(['sse event reset: {"reason":"trimmed"}'])
    }
  })

  it("runs a tiny fan-out (WebSocket and SSE) and resume end to end with sane numbers", {
    timeout: 75_000
  }, async () => {
    const { code, output } = await runBench([
      "--scenario",
      "fanout,sse-fanout,replay",
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
      "90"
    ])
    expect(code, output).toBe(0)
    const run = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as RunResult
    expect(existsSync(join(out, "report.html"))).toBe(true)
    for (const scenario of ["fanout", "sse-fanout"]) {
      const fan = run.results.find((r) => r.scenario === scenario)!
      expect(fan.status, `${scenario}: ${fan.reason}`).toBe("ok")
      expect(fan.setup?.opened, scenario).toBe(20)
      // no stream ended early, no unexpected message (latency is not judged here: a failed step is fine)
      expect(
        fan.notes.filter((n) => n.startsWith("unexpected closes") || n.startsWith("client problems")),
        scenario
      ).toEqual([])
      const step = fan.steps![0]!
      expect(step.received, scenario).toBe(step.expected)
      expect(step.received, scenario).toBeGreaterThan(0)
      expect(step.latency.count, scenario).toBeGreaterThan(0)
      expect(step.lost, scenario).toBe(0)
      expect(step.duplicated, scenario).toBe(0)
      expect(step.missing, scenario).toBe(0)
      expect(step.closes, scenario).toBe(0)
    }
    const sse = run.results.find((r) => r.scenario === "sse-fanout")!
    expect(Number(sse.serverStats?.sseDeliveries)).toBeGreaterThanOrEqual(sse.steps![0]!.received)
    expect(sse.serverStats?.connections).toBe(0)
    const replay = run.results.find((r) => r.scenario === "replay")!
    expect(replay.status, replay.reason).toBe("ok")
    expect(replay.recovery?.replayed).toBe(20 * 200)
    expect(replay.recovery?.lost).toBe(0)
    expect(replay.recovery?.duplicated).toBe(0)
    expect(replay.recovery?.failed).toBe(0)
  })
})
