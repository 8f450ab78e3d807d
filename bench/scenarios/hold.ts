/**
 * Holding many connections: N clients (10,000 with --clients 10000; 100,000 over several server processes with
 * --server-processes) connect with a JWT and subscribe to one channel, then a steady paced fan-out to all of them
 * runs for `--duration-ms` at `--rate` events per second. Passes when every client stays connected and receives
 * every event, with no error. Reports (holdSummary.ts) connections held, events delivered against expected,
 * delivery latency, server memory per idle connection and setup rate; latency is not judged: one event to N
 * sockets is N writes, so it grows with N.
 */
import type { ScenarioResult } from "../results.ts"
import { describeSetup, openClients } from "./connect.ts"
import { holdSummary } from "./holdSummary.ts"
import { withRig } from "./result.ts"
import type { Context, Spec } from "./spec.ts"
import { describeStep, pacedStep } from "./steps.ts"

export const hold = (ctx: Context, spec: Spec): Promise<ScenarioResult> =>
  withRig(ctx, spec, async (rig, result) => {
    if (!(await openClients(rig, spec, result, "fanout"))) return
    const clients = result.setup!.opened
    ctx.log(`  ${describeSetup(result)}`)
    ctx.log(`  holding ${clients} for ${spec.durationMs / 1000} s at ${spec.rate} event/s to all`)
    const step = await pacedStep(
      rig,
      { ...spec.step, durationMs: spec.durationMs, warmupMs: Math.min(1000, spec.durationMs / 4) },
      { rate: spec.rate, targets: 0, clients }
    )
    ctx.log(`  steady: ${describeStep(step, "ev/s")}`)
    const stats = await rig.loadgen.stats()
    // one event to N sockets takes N writes (about 9 µs each here): latency grows with N, so it is reported,
    // not judged; holding means everyone stayed connected and got everything
    const clean =
      step.lost + step.duplicated + step.missing + step.closes === 0 &&
      stats.open >= spec.clients &&
      step.received > 0 &&
      step.received === step.expected
    result.steps = [step]
    if (clean) result.best = step
    result.latency = step.latency
    result.cpu = step.cpu
    result.headline = { label: "connections held through steady fan-out", value: stats.open, unit: "" }
    if (!clean) {
      result.notes.push(
        `not clean: ${step.why ?? ""} open ${stats.open}/${spec.clients} closes ${JSON.stringify(stats.closes)}`
      )
    } else
      result.notes.push(
        `all ${stats.open} held and received every event (latency not judged: one event is ${stats.open} writes)`
      )
    if (Object.keys(stats.problems).length > 0) result.notes.push(`client problems: ${JSON.stringify(stats.problems)}`)
    result.serverStats = await rig.stats().catch((error: Error) => ({ unavailable: error.message.split("\n")[0] }))
    for (const line of holdSummary(spec, result, stats.open)) ctx.log(`  ${line}`)
  })
