/**
 * The run as text: one Markdown table row per scenario run (readable in a terminal and pasteable into
 * docs/performance.md), then the side-by-side ratios and the target verdicts.
 */
import { describeMachine } from "../machine.ts"
import type { RunResult, ScenarioResult } from "../results.ts"
import { disturbed } from "../targets.ts"

const fmt = (n: number) =>
  Math.abs(n) >= 100 ? Math.round(n).toLocaleString("en-US") : String(Math.round(n * 10) / 10)
const pct = (n: number | undefined) => (n === undefined ? "" : `${Math.round(n)}%`)
const ms = (n: number | undefined) => (n === undefined ? "" : String(n))

const markdown = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n")
}

const result = (r: ScenarioResult): string => {
  if (r.status === "skipped") return `skipped: ${r.reason ?? ""}`
  if (r.status === "failed") return `FAILED: ${(r.reason ?? "").slice(0, 100)}`
  if (!r.headline) return ""
  const parts: Array<string> = []
  if (r.best && r.sustained && r.sustained.rate < r.best.rate) {
    parts.push(`every rate up to ${fmt(r.sustained.deliveriesPerSec)}/s passed`)
  }
  if (r.best && !r.sustained && r.scenario !== "hold") parts.push("the lowest rate failed")
  if (r.unpaced) parts.push(`unpaced ${fmt(r.unpaced.deliveriesPerSec)}/s`)
  if (r.rates && (r.scenario === "publish" || r.scenario === "runs"))
    parts.push(...Object.entries(r.rates).map(([k, v]) => `${k}: ${fmt(v)}`))
  const extra = parts.length > 0 ? ` (${parts.join("; ")})` : ""
  return `${fmt(r.headline.value)}${r.headline.unit ? ` ${r.headline.unit}` : ""} ${r.headline.label}${extra}`
}

const notes = (r: ScenarioResult): string => {
  const out: Array<string> = []
  if (r.recovery) {
    const rec = r.recovery
    out.push(
      `missed ${rec.missed}, replayed ${fmt(rec.replayed)} at ${fmt(rec.replayPerSec)}/s, lost ${rec.lost}, dup ${rec.duplicated}`
    )
  }
  if (r.best?.cpu.broker !== undefined) out.push(`broker ${pct(r.best.cpu.broker)}`)
  else if (r.cpu?.broker !== undefined) out.push(`broker ${pct(r.cpu.broker)}`)
  out.push(...r.notes.filter((n) => !n.startsWith("server CPU profile")).map((n) => n.slice(0, 120)))
  return out.join("; ")
}

export const rows = (results: ReadonlyArray<ScenarioResult>): string =>
  markdown(
    [
      "scenario",
      "server",
      "transport",
      "clients",
      "result",
      "p50 ms",
      "p99 ms",
      "p99.9 ms",
      "max ms",
      "setup/s",
      "idle KiB/conn",
      "server CPU",
      "loadgen CPU",
      "other CPU",
      "notes"
    ],
    results.map((r) => [
      r.scenario,
      r.server,
      r.server === "tidings" ? r.transport : "—",
      r.clients > 0 ? String(r.clients) : "",
      result(r),
      ms(r.latency?.p50),
      ms(r.latency?.p99),
      ms(r.latency?.p999),
      ms(r.latency?.max),
      r.setup ? fmt(r.setup.perSec) : "",
      r.idle ? String(r.idle.perConnectionKiB) : "",
      pct(r.cpu?.server),
      pct(r.cpu?.loadgen),
      pct(r.cpu?.other),
      notes(r)
    ])
  )

export const render = (run: RunResult): string => {
  const parts = [`Machine: ${describeMachine(run.machine)}`, `Command: ${run.command}`, "", rows(run.results)]
  if (run.comparisons.length > 0) {
    parts.push("", "Side by side (same run, same load generator):")
    for (const c of run.comparisons) parts.push(`- ${c.what}: ${c.value}`)
  }
  if (run.verdicts.length > 0) {
    parts.push("", "Targets:")
    parts.push(
      markdown(
        ["target", "measured", "verdict"],
        run.verdicts.map((v) => [
          v.target,
          v.measured,
          v.met === undefined ? `not measured: ${v.detail}` : v.met ? `✔ ${v.detail}` : `✘ ${v.detail}`
        ])
      )
    )
  }
  const shaken = disturbed(run.results)
  if (shaken.length > 0) {
    parts.push(
      "",
      `Disturbed (other processes used > 30% of a core during the measurement; rerun on a quiet machine): ${shaken.join(", ")}`
    )
  }
  const profiles = run.results.filter((r) => r.profile && r.profile.length > 0)
  for (const r of profiles) {
    parts.push("", `Server CPU profile, ${r.id} (self time, top functions):`)
    for (const p of r.profile!) parts.push(`  ${String(p.selfPct).padStart(5)}%  ${p.fn}`)
  }
  parts.push(
    "",
    "CPU is percent of one core (loadgen summed over its processes); the cores are shared by all processes. " +
      '"other" is every other process on the machine during the measurement: above 30% the machine was shared and the numbers are disturbed.'
  )
  return parts.join("\n")
}
