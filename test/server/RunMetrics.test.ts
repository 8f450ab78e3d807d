/**
 * The runs part of `/metrics` (src/server/http/RunMetrics.ts), read from RunsStatus at scrape time: transition
 * counters, run commands by command and outcome, and whether the run storage answered its last check.
 */
import { Registry } from "prom-client"
import { describe, expect, it } from "vitest"
import * as RunsStatus from "../../src/runs/RunsStatus.ts"
import * as RunMetrics from "../../src/server/http/RunMetrics.ts"

describe("run metrics", () => {
  it("report the counters and storage readiness as they are when scraped", async () => {
    let ready = true
    const status = RunsStatus.make({
      role: "all",
      storage: "memory",
      worker: "local",
      readiness: () => ({ ready })
    })
    const registry = new Registry()
    RunMetrics.register(registry, status)
    status.counters.started = 3
    status.counters.resumedElsewhere = 1
    status.counters.command("start", "ok")
    status.counters.command("start", "ok")
    status.counters.command("cancel", "not_found")
    const first = await registry.metrics()
    expect(first).toMatch(/^tidings_runs_started_total 3$/m)
    expect(first).toMatch(/^tidings_runs_resumed_elsewhere_total 1$/m)
    expect(first).toMatch(/^tidings_run_commands_total\{command="start",outcome="ok"\} 2$/m)
    expect(first).toMatch(/^tidings_run_commands_total\{command="cancel",outcome="not_found"\} 1$/m)
    expect(first).toMatch(/^tidings_runs_storage_ready 1$/m)
    ready = false
    status.counters.started = 4
    const second = await registry.metrics()
    expect(second).toMatch(/^tidings_runs_started_total 4$/m)
    expect(second).toMatch(/^tidings_runs_storage_ready 0$/m)
  })
})
