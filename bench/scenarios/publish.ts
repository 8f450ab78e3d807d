/**
 * Publish path: appends per second through the server's own publish (validation, encoding, transport append),
 * with many appends in flight, round-robin over 1 and over many channels (a broker transport serializes appends
 * per channel; several channels show the pipelined rate). No subscribers: this is the write side alone.
 */
import type { ScenarioResult } from "../results.ts"
import { withRig } from "./result.ts"
import type { Context, Spec } from "./spec.ts"
import { waitForQuiet } from "./steps.ts"

export const publish = (ctx: Context, spec: Spec): Promise<ScenarioResult> =>
  withRig(ctx, spec, async (rig, result) => {
    if (spec.server !== "tidings") throw new Error("the publish path runs against tidings only")
    // warm-up
    await rig.server.call("appendRate", { durationMs: 500, inFlight: spec.inFlight, channels: 4 }, 60_000)
    result.rates = {}
    await rig.resetBrokerStats()
    let best = 0
    for (const channels of spec.channels) {
      await waitForQuiet(spec.ladder.quietWaitMs)
      const endCpu = rig.cpu()
      const r = await rig.server.call<{ appends: number; failed: number; ms: number }>(
        "appendRate",
        { durationMs: spec.durationMs, inFlight: spec.inFlight, channels },
        spec.durationMs + 60_000
      )
      const cpu = endCpu()
      const perSec = Math.round((r.appends / r.ms) * 1000)
      result.rates[`${channels} channel${channels === 1 ? "" : "s"}`] = perSec
      if (perSec >= best) {
        best = perSec
        result.cpu = cpu
      }
      if (r.failed > 0) result.notes.push(`${r.failed} appends failed with ${channels} channels`)
      ctx.log(
        `  ${channels} channel(s), ${spec.inFlight} in flight: ${perSec.toLocaleString("en-US")} appends/s ` +
          `(server ${Math.round(cpu.server ?? 0)}%${cpu.broker !== undefined ? `, broker ${Math.round(cpu.broker)}%` : ""})`
      )
    }
    result.headline = { label: `appends/s (${spec.inFlight} in flight)`, value: best, unit: "" }
    const inside = await rig.brokerCommandStats()
    if (inside) {
      result.notes.push(inside)
      ctx.log(`  ${inside}`)
    }
  })
