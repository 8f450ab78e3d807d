/**
 * The lines a `hold` run ends with: connections held (and how they spread over the server processes), events
 * delivered against expected, delivery latency, server memory per idle connection and setup rate, each beside
 * its target for a 100,000-connection node (issue 18: p99 ≤ 500 ms, ≤ 2.5 KiB per idle connection, ≥ 10,000
 * connections/s). It only formats what the scenario measured.
 */
import type { Cpu, ScenarioResult } from "../results.ts"
import { warmClientsOf } from "./connect.ts"
import type { Spec } from "./spec.ts"

/** The targets of a 100,000-connection node on the 2-core bench machine. */
export const holdTargets = { p99Ms: 500, idleKiB: 2.5, setupPerSec: 10_000 } as const

const fmt = (n: number) => Math.round(n).toLocaleString("en-US")
const verdict = (met: boolean) => (met ? "met" : "NOT met")

const pct = (n: number | undefined) => (n === undefined ? "?" : `${Math.round(n)}%`)
/** CPU in % of a core, and the server's µs per connection or delivery at `perSec`. */
const cpuOf = (cpu: Cpu, perSec: number): string => {
  const micros = (n: number | undefined) =>
    n === undefined || perSec <= 0 ? "?" : `${Math.round(((n / 100) * 1e6) / perSec)} µs`
  return (
    `server ${pct(cpu.server)} (${micros(cpu.server)} each${cpu.serverPrimary !== undefined ? `, of which the primary ${pct(cpu.serverPrimary)}, ${micros(cpu.serverPrimary)}` : ""}), ` +
    `load generators ${pct(cpu.loadgen)}, broker ${pct(cpu.broker)}, other processes ${pct(cpu.other)}`
  )
}

interface PerProcess {
  readonly process: number
  readonly connections: number
}

export const holdSummary = (spec: Spec, result: ScenarioResult, open: number): Array<string> => {
  const step = result.steps?.[0]
  const setup = result.setup
  const idle = result.idle
  if (!step || !setup || !idle) return []
  const perProcess = (result.serverStats?.perProcess as ReadonlyArray<PerProcess> | undefined) ?? []
  const counts = perProcess.map((p) => p.connections)
  const spread =
    counts.length > 0
      ? `${counts.length} server processes holding ${fmt(Math.min(...counts))} to ${fmt(Math.max(...counts))} each, open-file limit ${fmt(Number(result.serverStats?.openFileLimit ?? 0))} per process`
      : "1 server process"
  const published = spec.clients > 0 && setup.opened > 0 ? Math.round(step.expected / setup.opened) : 0
  const lines = [
    `held: ${fmt(open)} of ${fmt(spec.clients)} connections through ${spec.durationMs / 1000} s (${spread})`,
    `events: ${fmt(step.received)} delivered of ${fmt(step.expected)} expected (${fmt(published)} events × ${fmt(setup.opened)} clients); lost ${step.lost}, duplicated ${step.duplicated}, missing ${step.missing}, disconnected ${step.closes}`,
    `delivery (receipt − scheduled publish time, after the first second): p50 ${step.latency.p50} ms, p99 ${step.latency.p99} ms, max ${step.latency.max} ms over ${fmt(step.latency.count)} deliveries — p99 ≤ ${holdTargets.p99Ms} ms ${verdict(step.latency.p99 <= holdTargets.p99Ms)}`,
    `server memory per idle connection: ${idle.perConnectionKiB} KiB (RSS of every server process${counts.length > 0 ? " and the primary" : ""} after full GCs, young generation left out: ${fmt(idle.rssBeforeMiB - idle.youngBeforeMiB)} MiB with the first ${fmt(warmClientsOf(spec.clients))} clients, ${fmt(idle.rssAfterMiB - idle.youngAfterMiB)} MiB with all; plain RSS ${idle.rssPerConnectionKiB} KiB) — ≤ ${holdTargets.idleKiB} KiB ${verdict(idle.perConnectionKiB <= holdTargets.idleKiB)}`,
    `setup: ${fmt(setup.perSec)} connections/s with a JWT (to welcome)${setup.subscribePerSec !== undefined ? `, then subscribed at ${fmt(setup.subscribePerSec)}/s` : ""} — ≥ ${fmt(holdTargets.setupPerSec)}/s ${verdict(setup.perSec >= holdTargets.setupPerSec)}; CPU meanwhile ${cpuOf(setup.cpu, setup.perSec)}`,
    `steady fan-out CPU: ${cpuOf(step.cpu, step.deliveriesPerSec)} (per delivery)`
  ]
  result.summary = lines
  return lines
}
