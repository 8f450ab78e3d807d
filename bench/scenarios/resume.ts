/**
 * Resume after missed events — the reconnect storm and replay throughput. N clients subscribed to one channel
 * drop at once (no close handshake), the channel grows by `missed` events while they are away, then every client
 * reconnects at once and subscribes from its last received position while (storm) live events keep coming.
 * One small unmeasured drop-and-resume first warms the server up.
 * Measured: time from the reconnects to the last client's `subscribed` (its replay complete, so it is caught
 * up), per-client recovery times, replayed entries per second; then every client's stream is checked against
 * the channel's top: any gap is a lost event and any repeated offset a duplicate — both must be 0.
 */
import * as Histogram from "../histogram.ts"
import type { ScenarioResult } from "../results.ts"
import { describeSetup, openClients } from "./connect.ts"
import { withRig } from "./result.ts"
import type { Context, Spec } from "./spec.ts"
import { newStep, waitForQuiet } from "./steps.ts"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export const resume = (ctx: Context, spec: Spec): Promise<ScenarioResult> =>
  withRig(ctx, spec, async (rig, result) => {
    if (spec.server !== "tidings") throw new Error("resume scenarios run against tidings only")
    if (!(await openClients(rig, spec, result, "fanout"))) return
    const clients = result.setup!.opened
    ctx.log(`  ${describeSetup(result)}`)
    const payloadBytes = spec.step.payloadBytes

    // a delivered position for every client
    const first = newStep()
    await rig.loadgen.begin(first)
    await rig.server.call("burst", { step: first, count: 10, target: -1, payloadBytes }, 60_000)
    const warm = await rig.loadgen.settle(first, 10, 0, spec.step.drainMs)
    warm.histogram.destroy()
    if (warm.missing > 0) throw new Error(`${warm.missing} of the first deliveries never arrived`)

    // warm-up: one small drop and resume, so the measured one runs on a warm (JIT-compiled) server, as in production
    await rig.loadgen.drop()
    await sleep(100)
    // about 10,000 replayed entries in all (at least 100 per client): enough for the JIT to compile the replay path
    const warmCount = Math.max(100, Math.min(spec.missed, Math.floor(10_000 / clients)))
    await rig.server.call("burst", { step: newStep(), count: warmCount, target: -1, payloadBytes }, 60_000)
    const warmResume = await rig.loadgen.resume(60_000)
    warmResume.total.destroy()
    warmResume.subscribe.destroy()
    if (warmResume.failed > 0) throw new Error(`warm-up resume failed: ${JSON.stringify(warmResume.errors)}`)

    await waitForQuiet(spec.ladder.quietWaitMs)
    await rig.loadgen.drop()
    await sleep(200)
    const away = newStep()
    const burst = await rig.server.call<{ published: number; failed: number; ms: number }>(
      "burst",
      { step: away, count: spec.missed, target: -1, payloadBytes },
      300_000
    )
    if (burst.failed > 0) throw new Error(`${burst.failed} appends failed while clients were away`)
    ctx.log(`  ${clients} clients dropped; ${spec.missed} events appended meanwhile in ${Math.round(burst.ms)} ms`)

    const live = newStep()
    const liveRun =
      spec.liveRate > 0
        ? rig.server.call<{ published: number }>(
            "paced",
            { step: live, rate: spec.liveRate, durationMs: 600_000, warmupMs: 0, targets: 0, payloadBytes },
            660_000
          )
        : undefined
    const endCpu = rig.cpu()
    const resumed = await rig.loadgen.resume(60_000)
    const cpu = endCpu()
    if (liveRun) {
      await sleep(500)
      await rig.server.call("stopPaced", { step: live })
      await liveRun
    }
    const top = (await rig.server.call<{ offset: number }>("top", {})).offset
    const verified = await rig.loadgen.verify(top, spec.step.drainMs)
    const perClient = Histogram.summarize(resumed.total)
    const subscribe = Histogram.summarize(resumed.subscribe)
    resumed.total.destroy()
    resumed.subscribe.destroy()
    result.recovery = {
      clients,
      missed: spec.missed,
      fullRecoveryMs: Math.round(resumed.wallMs * 10) / 10,
      perClient,
      subscribeToCaughtUp: subscribe,
      replayed: resumed.replayed,
      replayPerSec: resumed.wallMs > 0 ? Math.round((resumed.replayed / resumed.wallMs) * 1000) : 0,
      lost: verified.gaps + verified.behind,
      duplicated: verified.repeats,
      resets: verified.resets,
      failed: resumed.failed,
      notRecovered: resumed.notRecovered,
      cpu
    }
    const r = result.recovery
    result.latency = perClient
    result.cpu = cpu
    result.headline =
      spec.scenario === "replay"
        ? { label: "replayed entries/s", value: r.replayPerSec, unit: "" }
        : { label: "time to full recovery", value: r.fullRecoveryMs, unit: "ms" }
    ctx.log(
      `  all resumed in ${r.fullRecoveryMs} ms (cpu server ${Math.round(cpu.server ?? 0)}% loadgen ${Math.round(cpu.loadgen ?? 0)}% other ${Math.round(cpu.other ?? 0)}%) (per client p50 ${perClient.p50} p99 ${perClient.p99} ms; subscribe→caught up ` +
        `p99 ${subscribe.p99} ms); replayed ${r.replayed} (${r.replayPerSec.toLocaleString("en-US")}/s); ` +
        `lost ${r.lost} duplicated ${r.duplicated} resets ${r.resets} failed ${r.failed}`
    )
    if (r.lost > 0 || r.duplicated > 0 || r.failed > 0 || r.notRecovered > 0 || r.resets > 0) {
      result.notes.push(
        `NOT CLEAN: lost ${r.lost}, duplicated ${r.duplicated}, failed ${r.failed}, not recovered ${r.notRecovered}, resets ${r.resets}, errors ${JSON.stringify(resumed.errors)}`
      )
    }
    result.serverStats = await rig.stats()
    const { problems } = await rig.loadgen.stats()
    if (Object.keys(problems).length > 0) {
      result.notes.push(`client-side: ${JSON.stringify(problems)}`)
      ctx.log(`  client-side: ${JSON.stringify(problems)}`)
    }
  })
