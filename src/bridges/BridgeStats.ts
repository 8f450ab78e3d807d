/**
 * What each bridge counts — messages appended, answered as duplicates, dead-lettered, dead letters that could not
 * be stored, failed append attempts — and whether it is connected; registered as Prometheus metrics (`tidings_bridge_*`) at scrape time and
 * read by readiness.
 */
import { Gauge, type Registry } from "prom-client"
import * as Scraped from "../server/http/ScrapedMetrics.ts"

export type Outcome = "appended" | "duplicate" | "dead_lettered" | "dead_letter_failed" | "append_failed"

export class BridgeStats {
  readonly outcomes = new Map<Outcome, number>()
  connected = false
  /** Why it is not connected, for /readyz. */
  reason: string | undefined = "connecting"

  constructor(readonly name: string) {}

  count(outcome: Outcome): void {
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1)
  }

  get(outcome: Outcome): number {
    return this.outcomes.get(outcome) ?? 0
  }
}

/** Registers every bridge's counters and connection state in `registry`. */
export const register = (registry: Registry, bridges: ReadonlyArray<BridgeStats>): void => {
  for (const outcome of ["appended", "duplicate", "dead_lettered", "dead_letter_failed", "append_failed"] as const) {
    Scraped.labelled(
      registry,
      `tidings_bridge_${outcome}_total`,
      `Bridge messages ${outcome.replace("_", " ")}, by bridge`,
      "bridge",
      () => new Map(bridges.map((b) => [b.name, b.get(outcome)]))
    )
  }
  new Gauge({
    name: "tidings_bridge_connected",
    help: "Whether the bridge is connected to its broker (1) or not (0)",
    labelNames: ["bridge"],
    registers: [registry],
    collect() {
      for (const b of bridges) this.set({ bridge: b.name }, b.connected ? 1 : 0)
    }
  })
}
