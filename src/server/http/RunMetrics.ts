/**
 * The runs part of `/metrics`: run transitions counted where they happen (the worker that executed them), run
 * commands by outcome (the gateway that took them), and whether the run storage answered its last check. Read
 * from RunsStatus at scrape time, like every other tidings metric.
 */
import { Counter, type Registry } from "prom-client"
import type { RunsStatusShape } from "../../runs/RunsStatus.ts"
import * as Scraped from "./ScrapedMetrics.ts"

export const register = (registry: Registry, status: RunsStatusShape): void => {
  const { counters } = status
  const counter = (name: string, help: string, read: () => number) => Scraped.counter(registry, name, help, read)
  counter("tidings_runs_started_total", "Runs this worker began", () => counters.started)
  counter("tidings_runs_completed_total", "Runs that completed on this worker", () => counters.completed)
  counter("tidings_runs_failed_total", "Runs that failed on this worker", () => counters.failed)
  counter("tidings_runs_cancelled_total", "Runs that ended cancelled on this worker", () => counters.cancelled)
  counter(
    "tidings_runs_resumed_elsewhere_total",
    "Runs this worker took over from another worker (after a crash, stop or shard move)",
    () => counters.resumedElsewhere
  )
  new Counter({
    name: "tidings_run_commands_total",
    help: "Run commands taken by this gateway, by command (start, cancel, answer) and outcome",
    labelNames: ["command", "outcome"],
    registers: [registry],
    collect() {
      this.reset()
      for (const [key, value] of counters.commands) {
        const [command, outcome] = key.split(":") as [string, string]
        this.inc({ command, outcome }, value)
      }
    }
  })
  Scraped.gauge(
    registry,
    "tidings_runs_storage_ready",
    "1 when the run storage answered its last background check, else 0",
    () => (status.readiness().ready ? 1 : 0)
  )
}
