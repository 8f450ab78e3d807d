/**
 * Command round trip: N clients send `echo` commands at a paced total rate, each stamped with its scheduled send
 * time; latency is reply receipt − scheduled time. The ladder finds the highest command rate with p99 ≤ the
 * limit, no error and no missing reply.
 */
import type { ScenarioResult } from "../results.ts"
import { describeSetup, openClients } from "./connect.ts"
import { withRig } from "./result.ts"
import type { Context, Spec } from "./spec.ts"
import { commandStep, describeStep, ladder } from "./steps.ts"

export const command = (ctx: Context, spec: Spec): Promise<ScenarioResult> =>
  withRig(ctx, spec, async (rig, result) => {
    if (spec.server !== "tidings") throw new Error("command round trip runs against tidings only")
    if (!(await openClients(rig, spec, result, "none"))) return
    ctx.log(`  ${describeSetup(result)}`)
    await commandStep(rig, { ...spec.step, durationMs: 1000, warmupMs: 0 }, { rate: spec.ladder.start })
    const { steps, best, sustained } = await ladder(
      (rate) => commandStep(rig, spec.step, { rate }),
      spec.ladder,
      (s) => ctx.log(`  ${describeStep(s, "cmd/s")}`)
    )
    result.steps = steps
    if (sustained) result.sustained = sustained
    result.headline = {
      label: `commands/s at p99 ≤ ${spec.step.p99LimitMs} ms`,
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
