/**
 * `npm run bench`: the orchestrator. Reads the command line (plan.ts), starts for every scenario run a fresh rig
 * (server under test and load generators in their own processes, brokers on private ports when needed), runs
 * the scenario, and writes results.json (after every scenario, so an interrupted run keeps what it measured),
 * report.html and table.md under bench/results/, then prints the table, the side-by-side ratios and the target
 * verdicts. It measures nothing itself and never runs load on its own event loop. A hard deadline stops the
 * whole run, children included.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { broker, stopAll } from "./brokers.ts"
import { describeMachine, machine } from "./machine.ts"
import { parsePlan, usage } from "./plan.ts"
import { fdLimit } from "./procstat.ts"
import { renderHtml } from "./report/html.ts"
import { render } from "./report/table.ts"
import type { RunResult, ScenarioResult } from "./results.ts"
import { Rig } from "./rig.ts"
import { command } from "./scenarios/command.ts"
import { fanout } from "./scenarios/fanout.ts"
import { hold } from "./scenarios/hold.ts"
import { http } from "./scenarios/http.ts"
import { publish } from "./scenarios/publish.ts"
import { resume } from "./scenarios/resume.ts"
import { runs } from "./scenarios/runs.ts"
import { type Context, label, type ScenarioName, type Spec } from "./scenarios/spec.ts"
import { unicast } from "./scenarios/unicast.ts"
import { compare, judge } from "./targets.ts"

const runners: Record<ScenarioName, (ctx: Context, spec: Spec) => Promise<ScenarioResult>> = {
  fanout,
  "sse-fanout": fanout,
  unicast,
  command,
  storm: resume,
  replay: resume,
  publish,
  http,
  hold,
  runs
}

const argv = process.argv.slice(2)
const plan = (() => {
  try {
    return parsePlan(argv)
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${usage}`)
    process.exit(2)
  }
})()
if (plan === "help") {
  process.stdout.write(usage)
  process.exit(0)
}

const started = new Date()
const stamp = started.toISOString().replace(/[:.]/g, "-").slice(0, 19)
const benchDir = fileURLToPath(new URL(".", import.meta.url))
const dir = plan.out ?? join(benchDir, "results", `${stamp}-${plan.label}`)
mkdirSync(dir, { recursive: true })
const log = (line: string) => process.stdout.write(`${line}\n`)

const host = machine()
const limits = fdLimit()
// a server process holds one socket per client it was handed (one process: all of them), a load generator one per
// client it holds; both need files and pipes besides
const most = Math.max(
  0,
  ...plan.specs.map((s) => Math.max(Math.ceil(s.clients / s.serverProcesses), Math.ceil(s.clients / s.workers)))
)
// a group's primary does not deal connections out evenly (a busy process takes fewer): a quarter to spare
const want = Math.max(4096, Math.ceil(most * 1.25) + 2048)
const fd = limits ? Math.min(limits.hard, want) : want
log(`tidings bench — ${describeMachine(host)}`)
log(
  `open-file limit for children: ${fd}${limits && limits.hard < want ? ` (the hard limit ${limits.hard} is below the ${want} that ${most} sockets in one process want: expect connect errors; use more --server-processes)` : ""}`
)
log(
  `results: ${relative(process.cwd(), dir)}  (${plan.specs.length} scenario runs, deadline ${plan.deadlineMs / 1000} s)`
)

const deadlineAt = Date.now() + plan.deadlineMs
const deadline = setTimeout(() => {
  log(`\nDEADLINE of ${plan.deadlineMs / 1000} s reached: stopping (partial results in ${dir})`)
  process.exit(3)
}, plan.deadlineMs)
process.on("SIGINT", () => process.exit(130))
process.on("SIGTERM", () => process.exit(143))

let rigs = 0
const ctx: Context = {
  log,
  rig: async (spec) => {
    const b = await broker(spec.transport)
    if (typeof b === "string") return b
    return Rig.start({
      server: spec.server,
      transport: spec.transport,
      broker: b,
      workers: spec.workers,
      serverProcesses: spec.serverProcesses,
      runId: `${stamp.replace(/-/g, "")}_${++rigs}`,
      deadlineMs: Math.max(10_000, deadlineAt - Date.now()),
      fdLimit: fd,
      ackMs: spec.ackMs,
      pin: plan.pin,
      backlog: plan.backlog,
      retention:
        spec.scenario === "storm" || spec.scenario === "replay" ? Math.max(10_000, spec.missed * 2 + 1000) : undefined,
      cpuProfDir: plan.cpuProf ? join(dir, "profiles") : undefined,
      loadgenProfDir: plan.cpuProfLoadgen ? join(dir, "profiles-loadgen") : undefined
    })
  }
}

const results: Array<ScenarioResult> = []
const assemble = (): RunResult => ({
  startedAt: started.toISOString(),
  command: `npm run bench${argv.length > 0 ? ` -- ${argv.join(" ")}` : ""}`,
  machine: host,
  results,
  comparisons: compare(results),
  verdicts: judge(results),
  durationMs: Date.now() - started.getTime()
})
const save = (run: RunResult) => writeFileSync(join(dir, "results.json"), `${JSON.stringify(run, null, 2)}\n`)

try {
  for (const [i, spec] of plan.specs.entries()) {
    log(`\n[${i + 1}/${plan.specs.length}] ${label(spec)}`)
    results.push(await runners[spec.scenario](ctx, spec))
    save(assemble())
  }
} finally {
  await stopAll()
}
clearTimeout(deadline)

const run = assemble()
save(run)
const text = render(run)
writeFileSync(join(dir, "table.md"), `${text}\n`)
writeFileSync(join(dir, "report.html"), renderHtml(run))
log(`\n${text}`)
log(
  `\nwrote ${relative(process.cwd(), join(dir, "results.json"))} and ${relative(process.cwd(), join(dir, "report.html"))}`
)
process.exit(results.some((r) => r.status === "failed") ? 1 : 0)
