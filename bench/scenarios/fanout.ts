/**
 * Fan-out: one channel (or one broadcast, for the baselines), N subscribers. Measures connection setup, memory
 * per idle connection, the highest paced event rate whose deliveries keep p99 ≤ the limit with nothing lost
 * (the ladder), and the unpaced maximum: publishing as fast as the slowest client keeps up, with a bounded
 * window of events outstanding (closed loop, so its latency is queueing by design and not comparable to the
 * paced latency).
 *
 * `sse-fanout` is the same run with the channel read as Server-Sent Events (loadgen/SseClient.ts: plain HTTP,
 * one stream per reader) from the same tidings server, publisher and ladder, so its figures sit beside the
 * WebSocket fan-out's of the same run.
 */
import * as Histogram from "../histogram.ts"
import type { ScenarioResult } from "../results.ts"
import type { Rig } from "../rig.ts"
import { describeSetup, openClients } from "./connect.ts"
import { withRig } from "./result.ts"
import type { Context, Spec } from "./spec.ts"
import { describeStep, ladder, newStep, pacedStep, waitForQuiet } from "./steps.ts"

const unpaced = async (rig: Rig, spec: Spec, clients: number): Promise<NonNullable<ScenarioResult["unpaced"]>> => {
  await waitForQuiet(spec.ladder.quietWaitMs)
  const step = newStep()
  await rig.loadgen.begin(step)
  // bound what is outstanding to about 50k deliveries, so server buffers stay far below the slow-consumer limit
  const window = Math.max(8, Math.round(50_000 / clients))
  const stopRelay = await rig.loadgen.relayProgress(step, (received) => rig.server.notify("progress", { received }))
  const endCpu = rig.cpu()
  const published = await rig.server.call<{ published: number; elapsedMs: number }>(
    "unpaced",
    { step, durationMs: spec.unpacedMs, window, payloadBytes: spec.step.payloadBytes },
    spec.unpacedMs + 60_000
  )
  const settled = await rig.loadgen.settle(step, published.published, 0, spec.step.drainMs)
  const cpu = endCpu()
  await stopRelay()
  const spanMs = settled.lastReceipt - settled.firstReceipt
  const latency = Histogram.summarize(settled.histogram)
  settled.histogram.destroy()
  return {
    deliveriesPerSec: spanMs > 0 ? (settled.received / spanMs) * 1000 : 0,
    latency,
    cpu,
    lost: settled.lost + settled.missing + settled.duplicated
  }
}

export const fanout = (ctx: Context, spec: Spec): Promise<ScenarioResult> =>
  withRig(ctx, spec, async (rig, result) => {
    if (!(await openClients(rig, spec, result, "fanout"))) return
    const clients = result.setup!.opened
    ctx.log(`  ${describeSetup(result)}`)
    // warm-up: JIT and buffers; not recorded
    await pacedStep(
      rig,
      { ...spec.step, durationMs: 1000, warmupMs: 0 },
      { rate: spec.ladder.start, targets: 0, clients }
    )
    const { steps, best, sustained } = await ladder(
      (rate) => pacedStep(rig, spec.step, { rate, targets: 0, clients }),
      spec.ladder,
      (s) => ctx.log(`  ${describeStep(s, "ev/s")}`)
    )
    result.steps = steps
    if (sustained) result.sustained = sustained
    ctx.log(
      `  → highest passing ${Math.round(best?.deliveriesPerSec ?? 0).toLocaleString("en-US")} deliveries/s; ` +
        `every rate up to ${Math.round(sustained?.deliveriesPerSec ?? 0).toLocaleString("en-US")}/s passed`
    )
    if (best) {
      result.best = best
      result.headline = {
        label: `deliveries/s at p99 ≤ ${spec.step.p99LimitMs} ms`,
        value: Math.round(best.deliveriesPerSec),
        unit: ""
      }
      result.latency = best.latency
      result.cpu = best.cpu
    } else {
      result.headline = { label: `deliveries/s at p99 ≤ ${spec.step.p99LimitMs} ms`, value: 0, unit: "" }
      result.notes.push(`no step passed (first: ${steps[0]?.why ?? "none"})`)
    }
    if (spec.unpacedMs > 0) {
      const u = await unpaced(rig, spec, clients)
      result.unpaced = u
      ctx.log(
        `  unpaced: ${Math.round(u.deliveriesPerSec).toLocaleString("en-US")} deliveries/s, p99 ${u.latency.p99} ms ` +
          `(closed loop), cpu server ${Math.round(u.cpu.server ?? 0)}% loadgen ${Math.round(u.cpu.loadgen ?? 0)}% other ${Math.round(u.cpu.other ?? 0)}%` +
          (u.lost > 0 ? `, ${u.lost} lost/missing/duplicated` : "")
      )
    }
    result.serverStats = await rig.stats()
    const cutOff = Number(result.serverStats.sseSlowReaders ?? 0)
    if (cutOff > 0) result.notes.push(`${cutOff} SSE streams cut off as slow readers`)
    const { closes, problems } = await rig.loadgen.stats()
    // SSE streams have no close code: 0 is a stream the server ended
    if (Object.keys(closes).length > 0) result.notes.push(`unexpected closes: ${JSON.stringify(closes)}`)
    if (Object.keys(problems).length > 0) result.notes.push(`client problems: ${JSON.stringify(problems)}`)
  })
