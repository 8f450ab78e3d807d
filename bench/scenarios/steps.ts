/**
 * Paced steps and the ladder that searches over them. A step publishes (or sends commands) at one fixed rate for
 * a fixed time, waits until everything arrived or the drain time ran out, and passes when p99 latency is within
 * the limit AND nothing was lost, duplicated, missing or disconnected. The ladder raises the rate geometrically
 * and answers with the highest passing rate.
 */
import * as Histogram from "../histogram.ts"
import type { Settled } from "../loadgen/LoadGen.ts"
import { machineCpuMs } from "../procstat.ts"
import type { Cpu, Step } from "../results.ts"
import type { Rig } from "../rig.ts"

export interface StepPlan {
  readonly durationMs: number
  readonly warmupMs: number
  readonly drainMs: number
  readonly payloadBytes: number
  readonly p99LimitMs: number
}

export interface LadderPlan {
  readonly start: number
  readonly factor: number
  readonly max: number
  readonly maxSteps: number
  /** Bisection steps between the best pass and the next failure above it. */
  readonly refine: number
  /** Re-runs of a failing rate before it counts as failed. */
  readonly retries: number
  /** Stop climbing after this many failed rates in a row. */
  readonly stopAfter: number
  /** Before a step, wait at most this long for other processes on the machine to go quiet. */
  readonly quietWaitMs: number
  /** Extra re-runs of a failed step that other processes disturbed. */
  readonly disturbedRetries: number
  /** Most steps one ladder runs, retries included (keeps a noisy run bounded). */
  readonly maxRuns: number
  /** Explicit rates instead of a search (every one is run). */
  readonly rates?: ReadonlyArray<number> | undefined
}

/** A step during which other processes used more than this much CPU (% of one core) is marked disturbed. */
export const DISTURBED_PCT = 30

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Waits (at most `maxWaitMs`) until the machine is quiet: between steps our own processes idle, so CPU used
 * over a 500 ms window is other processes' (a shared machine). Returns how busy it still was.
 */
export const waitForQuiet = async (maxWaitMs: number): Promise<number | undefined> => {
  const deadline = performance.now() + maxWaitMs
  let busy: number | undefined
  do {
    const before = machineCpuMs()
    const at = performance.now()
    await sleep(500)
    const after = machineCpuMs()
    if (before === undefined || after === undefined) return undefined
    busy = ((after - before) / (performance.now() - at)) * 100
    if (busy < DISTURBED_PCT) return busy
  } while (performance.now() < deadline)
  return busy
}

let nextStep = 1
/** Step ids are unique per orchestrator run, so a late delivery of an old step is never counted in a new one. */
export const newStep = (): number => nextStep++

const toStep = (
  step: number,
  rate: number,
  settled: Settled,
  expected: number,
  windowMs: number,
  cpu: Cpu,
  plan: StepPlan,
  extra: { publisherLagMs?: number; failed?: number }
): Step => {
  const latency = Histogram.summarize(settled.histogram)
  const closes = settled.clients - settled.open
  const why: Array<string> = []
  if (latency.count === 0) why.push("nothing measured")
  else if (latency.p99 > plan.p99LimitMs) why.push(`p99 ${latency.p99} ms > ${plan.p99LimitMs} ms`)
  if (settled.lost > 0) why.push(`${settled.lost} lost`)
  if (settled.duplicated > 0) why.push(`${settled.duplicated} duplicated`)
  if (settled.missing > 0) why.push(`${settled.missing} not delivered within the drain time`)
  if (closes > 0) why.push(`${closes} clients disconnected`)
  if (extra.failed) why.push(`${extra.failed} publishes failed`)
  const errors = Object.entries(settled.commandErrors)
  if (errors.length > 0) why.push(`errors: ${errors.map(([k, v]) => `${k} ${v}`).join(", ")}`)
  const result: Step = {
    step,
    rate,
    disturbed: (cpu.other ?? 0) > DISTURBED_PCT,
    deliveriesPerSec: windowMs > 0 ? settled.measured / (windowMs / 1000) : 0,
    latency,
    curve: Histogram.curve(settled.histogram),
    pass: why.length === 0,
    why: why.length > 0 ? why.join("; ") : undefined,
    expected,
    received: settled.received,
    lost: settled.lost,
    duplicated: settled.duplicated,
    missing: settled.missing,
    closes,
    cpu,
    publisherLagMs: extra.publisherLagMs
  }
  settled.histogram.destroy()
  return result
}

/** One paced publishing step: `targets` 0 = every client gets every event; N = unicast round-robin over N. */
export const pacedStep = async (
  rig: Rig,
  plan: StepPlan,
  args: { rate: number; targets: number; clients: number }
): Promise<Step> => {
  const step = newStep()
  await rig.loadgen.begin(step)
  const endCpu = rig.cpu()
  const published = await rig.server.call<{
    published: number
    measured: number
    windowMs: number
    maxLagMs: number
    failed: number
  }>(
    "paced",
    {
      step,
      rate: args.rate,
      durationMs: plan.durationMs,
      warmupMs: plan.warmupMs,
      targets: args.targets,
      payloadBytes: plan.payloadBytes
    },
    plan.durationMs + 60_000
  )
  const cpu = endCpu()
  const settled = await rig.loadgen.settle(step, published.published, args.targets, plan.drainMs)
  const expected = args.targets > 0 ? published.published : published.published * args.clients
  return toStep(step, args.rate, settled, expected, published.windowMs, cpu, plan, {
    publisherLagMs: published.maxLagMs,
    failed: published.failed
  })
}

/** One paced command step: `rate` echo commands per second over all clients; latency is the round trip. */
export const commandStep = async (rig: Rig, plan: StepPlan, args: { rate: number }): Promise<Step> => {
  const step = newStep()
  const endCpu = rig.cpu()
  const settled = await rig.loadgen.commands({
    step,
    rate: args.rate,
    durationMs: plan.durationMs,
    warmupMs: plan.warmupMs,
    payloadBytes: plan.payloadBytes,
    drainMs: plan.drainMs
  })
  const cpu = endCpu()
  const windowMs = Math.max(0, plan.durationMs - plan.warmupMs)
  return toStep(step, args.rate, settled, settled.commandsSent, windowMs, cpu, plan, {})
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US")
const pct = (n: number | undefined) => (n === undefined ? "n/a" : `${Math.round(n)}%`)

/** Server CPU per delivery (or reply), µs: the cost a profile has to explain. */
export const serverMicros = (s: Step): number | undefined =>
  s.cpu.server === undefined || s.deliveriesPerSec <= 0
    ? undefined
    : Math.round(((s.cpu.server / 100) * 1e6 * 100) / s.deliveriesPerSec) / 100

export const describeStep = (s: Step, unit: string): string =>
  `${fmt(s.rate)} ${unit} → ${fmt(s.deliveriesPerSec)}/s  p50 ${s.latency.p50} p99 ${s.latency.p99} max ${s.latency.max} ms` +
  `  server ${serverMicros(s) ?? "?"} µs each` +
  `  cpu server ${pct(s.cpu.server)} loadgen ${pct(s.cpu.loadgen)}${s.cpu.broker !== undefined ? ` broker ${pct(s.cpu.broker)}` : ""} other ${pct(s.cpu.other)}` +
  `  ${s.pass ? "PASS" : `FAIL (${s.why})`}${s.disturbed ? " [disturbed: other processes were busy]" : ""}`

/**
 * Finds the highest passing rate. Latency on a shared 2-core machine is noisy and not monotonic in the rate
 * (coalescing makes writes cheaper as the rate grows), so every step first waits for the machine to be quiet,
 * a failing rate is retried `retries` times (and `disturbedRetries` more when other processes disturbed it), the
 * climb goes on until `stopAfter` rates in a row failed, then it bisects between the best pass and the next
 * failure above it — all within `maxRuns` steps.
 */
export const ladder = async (
  run: (rate: number) => Promise<Step>,
  plan: LadderPlan,
  log: (step: Step) => void
): Promise<{ steps: Array<Step>; best: Step | undefined; sustained: Step | undefined }> => {
  const steps: Array<Step> = []
  let best: Step | undefined
  const attempt = async (rate: number): Promise<Step> => {
    let step: Step | undefined
    let disturbedRetries = 0
    for (let k = 0; k <= plan.retries && !step?.pass && steps.length < plan.maxRuns; k++) {
      await waitForQuiet(plan.quietWaitMs)
      step = await run(Math.round(rate))
      steps.push(step)
      log(step)
      // a failure while other processes took the CPU says nothing about the server: try again (a few times)
      if (!step.pass && step.disturbed && disturbedRetries++ < plan.disturbedRetries) k--
    }
    if (step!.pass && (!best || step!.rate > best.rate)) best = step
    return step!
  }
  if (plan.rates && plan.rates.length > 0) {
    for (const rate of plan.rates) await attempt(rate)
    return { steps, best, sustained: sustainedOf(steps) }
  }
  let rate = plan.start
  let failuresInARow = 0
  for (
    let k = 0;
    k < plan.maxSteps && rate <= plan.max && failuresInARow < plan.stopAfter && steps.length < plan.maxRuns;
    k++
  ) {
    const step = await attempt(rate)
    failuresInARow = step.pass ? 0 : failuresInARow + 1
    rate *= plan.factor
  }
  const failedAbove = (r: number) =>
    steps.filter((s) => !s.pass && s.rate > r && !steps.some((p) => p.pass && p.rate === s.rate)).map((s) => s.rate)
  let lo = best?.rate ?? 0
  let hi = Math.min(...failedAbove(lo))
  for (
    let k = 0;
    k < plan.refine && Number.isFinite(hi) && hi - lo > Math.max(2, lo * 0.05) && steps.length < plan.maxRuns;
    k++
  ) {
    const mid = lo > 0 ? Math.sqrt(lo * hi) : hi / 2
    const step = await attempt(mid)
    if (step.pass) lo = step.rate
    else hi = step.rate
  }
  return { steps, best, sustained: sustainedOf(steps) }
}

/**
 * The highest rate below which every rate tried passed (a rate passes when any of its attempts did): what a
 * deployment can count on, next to the highest passing rate (latency is not monotonic in the rate).
 */
export const sustainedOf = (steps: ReadonlyArray<Step>): Step | undefined => {
  const rates = [...new Set(steps.map((s) => s.rate))].sort((a, b) => a - b)
  let sustained: Step | undefined
  for (const rate of rates) {
    const passed = steps.find((s) => s.rate === rate && s.pass)
    if (!passed) break
    sustained = passed
  }
  return sustained
}
