/**
 * Unicast: every client subscribes to its personal channel `user:<sub>`, and event j goes to client j mod N, so
 * each delivery is its own append and its own channel (the per-publish cost, not the per-socket cost). The
 * ladder finds the highest total event rate with p99 ≤ the limit and nothing lost.
 */
import type { ScenarioResult } from "../results.ts"
import { describeSetup, openClients } from "./connect.ts"
import { withRig } from "./result.ts"
import type { Context, Spec } from "./spec.ts"
import { describeStep, ladder, pacedStep } from "./steps.ts"

export const unicast = (ctx: Context, spec: Spec): Promise<ScenarioResult> =>
  withRig(ctx, spec, async (rig, result) => {
    if (spec.server !== "tidings") throw new Error("unicast runs against tidings only")
    if (!(await openClients(rig, spec, result, "personal"))) return
    const clients = result.setup!.opened
    ctx.log(`  ${describeSetup(result)}`)
    if (clients < spec.clients) throw new Error(`only ${clients} of ${spec.clients} clients connected`)
    await pacedStep(
      rig,
      { ...spec.step, durationMs: 1000, warmupMs: 0 },
      { rate: spec.ladder.start, targets: clients, clients }
    )
    const { steps, best, sustained } = await ladder(
      (rate) => pacedStep(rig, spec.step, { rate, targets: clients, clients }),
      spec.ladder,
      (s) => ctx.log(`  ${describeStep(s, "ev/s")}`)
    )
    result.steps = steps
    if (sustained) result.sustained = sustained
    result.headline = {
      label: `deliveries/s at p99 ≤ ${spec.step.p99LimitMs} ms`,
      value: Math.round(best?.deliveriesPerSec ?? 0),
      unit: ""
    }
    if (best) {
      result.best = best
      result.latency = best.latency
      result.cpu = best.cpu
    }
    result.serverStats = await rig.stats()
  })
