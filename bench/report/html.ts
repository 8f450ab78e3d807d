/**
 * The run as one self-contained HTML page (inline SVG, no scripts, no external assets): machine and command,
 * the results table, the ratios and verdicts, and charts — p99 latency against offered load for every ladder,
 * the latency-by-percentile curve of each fan-out's best passing step, throughput (paced and unpaced), CPU per
 * process (to see when the load generator was the limit), recovery times and append rates.
 */
import { describeMachine } from "../machine.ts"
import type { RunResult, ScenarioResult } from "../results.ts"
import { disturbed } from "../targets.ts"
import { barChart, lineChart } from "./svg.ts"

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
const name = (r: ScenarioResult) =>
  `${r.server}${r.server === "tidings" ? `/${r.transport}` : ""}${r.scenario === "sse-fanout" ? " SSE" : ""} ${r.clients > 0 ? `×${r.clients}` : ""}`.trim()

/** x on a "nines" axis: 90 → 1, 99 → 2, 99.9 → 3. */
const nines = (p: number) => -Math.log10(Math.max(1e-6, 1 - p / 100))

const ladderChart = (title: string, results: ReadonlyArray<ScenarioResult>, perClient: boolean) =>
  lineChart({
    title,
    xLabel: perClient ? "offered deliveries per second (rate × clients)" : "offered rate per second",
    yLabel: "p99 latency (ms, log)",
    yLog: true,
    xLog: true,
    threshold: { y: 50, label: "p99 limit 50 ms" },
    series: results.map((r) => ({
      name: name(r),
      points: (r.steps ?? []).map(
        (s) => [perClient ? s.rate * r.clients : s.rate, Math.max(0.01, s.latency.p99)] as const
      ),
      failed: (r.steps ?? []).map((s) => !s.pass)
    }))
  })

const table = (run: RunResult): string => {
  const head = [
    "scenario",
    "server",
    "transport",
    "clients",
    "result",
    "p50",
    "p99",
    "p99.9",
    "max",
    "setup/s",
    "KiB/conn",
    "server CPU",
    "loadgen CPU",
    "other CPU",
    "notes"
  ]
  const pct = (n: number | undefined) => (n === undefined ? "" : `${Math.round(n)}%`)
  const rows = run.results.map((r) => {
    const result =
      r.status !== "ok"
        ? `${r.status}: ${r.reason ?? ""}`
        : r.headline
          ? `${Math.round(r.headline.value).toLocaleString("en-US")} ${r.headline.unit} ${r.headline.label}`
          : ""
    return [
      r.scenario,
      r.server,
      r.server === "tidings" ? r.transport : "—",
      r.clients ? String(r.clients) : "",
      result +
        (r.best && r.sustained && r.sustained.rate < r.best.rate
          ? ` (every rate up to ${Math.round(r.sustained.deliveriesPerSec).toLocaleString("en-US")}/s passed)`
          : "") +
        (r.unpaced ? ` (unpaced ${Math.round(r.unpaced.deliveriesPerSec).toLocaleString("en-US")}/s)` : ""),
      String(r.latency?.p50 ?? ""),
      String(r.latency?.p99 ?? ""),
      String(r.latency?.p999 ?? ""),
      String(r.latency?.max ?? ""),
      r.setup ? r.setup.perSec.toLocaleString("en-US") : "",
      r.idle ? String(r.idle.perConnectionKiB) : "",
      pct(r.cpu?.server),
      pct(r.cpu?.loadgen),
      pct(r.cpu?.other),
      r.notes.join("; ")
    ]
  })
  return `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>${rows
    .map((row) => `<tr>${row.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`)
    .join("")}</tbody></table>`
}

export const renderHtml = (run: RunResult): string => {
  const ok = run.results.filter((r) => r.status === "ok")
  // WebSocket and SSE fan-outs on the same charts
  const fanouts = ok.filter((r) => r.scenario === "fanout" || r.scenario === "sse-fanout")
  const charts: Array<string> = []
  if (fanouts.length > 0) {
    charts.push(ladderChart("Fan-out: p99 latency vs offered load (hollow = failed step)", fanouts, true))
    charts.push(
      lineChart({
        title: "Fan-out: latency by percentile at the best passing step",
        xLabel: "percentile",
        yLabel: "latency (ms, log)",
        yLog: true,
        xTicks: [
          [0, "0"],
          [1, "90"],
          [2, "99"],
          [3, "99.9"],
          [4, "99.99"],
          [5, "99.999"]
        ],
        series: fanouts
          .filter((r) => r.best)
          .map((r) => ({
            name: name(r),
            points: r.best!.curve.filter(([p]) => p < 100).map(([p, v]) => [nines(p), Math.max(0.01, v)] as const)
          }))
      })
    )
    charts.push(
      barChart({
        title: "Fan-out throughput (deliveries per second)",
        unit: "/s",
        bars: fanouts.map((r) => ({
          label: name(r),
          values: [
            { name: "paced, p99 ≤ 50 ms", value: Math.round(r.best?.deliveriesPerSec ?? 0) },
            ...(r.unpaced ? [{ name: "unpaced (closed loop)", value: Math.round(r.unpaced.deliveriesPerSec) }] : [])
          ]
        }))
      })
    )
  }
  const ladders = ok.filter((r) => (r.scenario === "unicast" || r.scenario === "command") && r.steps)
  if (ladders.length > 0)
    charts.push(ladderChart("Unicast and command round trip: p99 vs offered rate", ladders, false))
  const cpuOf = ok.filter((r) => r.cpu)
  if (cpuOf.length > 0) {
    charts.push(
      barChart({
        title: "CPU at the reported point (% of one core; 2 cores in total)",
        unit: "%",
        bars: cpuOf.map((r) => ({
          label: `${r.scenario} ${name(r)}`,
          values: [
            { name: "server", value: Math.round(r.cpu?.server ?? 0) },
            { name: "load generator", value: Math.round(r.cpu?.loadgen ?? 0) },
            { name: "other processes", value: Math.round(r.cpu?.other ?? 0) },
            ...(r.cpu?.broker !== undefined ? [{ name: "broker", value: Math.round(r.cpu.broker) }] : [])
          ]
        }))
      })
    )
  }
  const recoveries = ok.filter((r) => r.recovery)
  if (recoveries.length > 0) {
    charts.push(
      barChart({
        title: "Resume: time until every client is caught up (ms)",
        unit: " ms",
        bars: recoveries.map((r) => ({
          label: `${r.scenario} ${name(r)} missed ${r.recovery!.missed}`,
          values: [
            { name: "all clients caught up", value: r.recovery!.fullRecoveryMs },
            { name: "p99 per client", value: r.recovery!.perClient.p99 }
          ]
        }))
      })
    )
  }
  const publishes = ok.filter((r) => r.scenario === "publish" && r.rates)
  if (publishes.length > 0) {
    charts.push(
      barChart({
        title: "Publish path (appends per second)",
        unit: "/s",
        bars: publishes.map((r) => ({
          label: r.transport,
          values: Object.entries(r.rates!).map(([k, v]) => ({ name: k, value: v }))
        }))
      })
    )
  }
  const verdicts = run.verdicts
    .map(
      (v) =>
        `<tr><td>${esc(v.target)}</td><td>${esc(v.measured)}</td><td class="${v.met === undefined ? "na" : v.met ? "ok" : "bad"}">${esc(
          v.met === undefined ? `not measured: ${v.detail}` : v.detail
        )}</td></tr>`
    )
    .join("")
  const profiles = ok
    .filter((r) => r.profile?.length)
    .map(
      (r) =>
        `<h3>Server CPU profile: ${esc(r.id)}</h3><pre>${esc(r.profile!.map((p) => `${String(p.selfPct).padStart(5)}%  ${p.fn}`).join("\n"))}</pre>`
    )
    .join("")
  return `<!doctype html><html><head><meta charset="utf-8"><title>tidings bench ${esc(run.startedAt)}</title>
<style>body{font-family:system-ui,sans-serif;margin:24px;max-width:1400px;color:#111}table{border-collapse:collapse;font-size:13px;margin:12px 0}
td,th{border:1px solid #d1d5db;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f3f4f6}.ok{color:#15803d}.bad{color:#b91c1c}.na{color:#6b7280}
svg{display:block;margin:16px 0;max-width:100%;height:auto}code,pre{background:#f3f4f6;padding:2px 4px}</style></head><body>
<h1>tidings bench</h1>
<p><b>Machine:</b> ${esc(describeMachine(run.machine))}<br><b>Command:</b> <code>${esc(run.command)}</code><br><b>Started:</b> ${esc(run.startedAt)}, took ${Math.round(run.durationMs / 1000)} s</p>
<p>Latency is from each event's <i>scheduled</i> publish time to its receipt (coordinated omission corrected), in ms. A step passes when p99 ≤ 50 ms and nothing is lost, duplicated, missing or disconnected. CPU is % of one core per process; server, load generator and broker share 2 cores.</p>
${table(run)}
${run.comparisons.length > 0 ? `<h2>Side by side</h2><ul>${run.comparisons.map((c) => `<li><b>${esc(c.what)}:</b> ${esc(c.value)}</li>`).join("")}</ul>` : ""}
${disturbed(run.results).length > 0 ? `<p class="bad"><b>Disturbed</b> (other processes used more than 30% of a core during the measurement; rerun on a quiet machine): ${esc(disturbed(run.results).join(", "))}</p>` : ""}
${verdicts ? `<h2>Targets</h2><table><thead><tr><th>target</th><th>measured</th><th>verdict</th></tr></thead><tbody>${verdicts}</tbody></table>` : ""}
<h2>Charts</h2>${charts.join("\n")}
${profiles}
</body></html>`
}
