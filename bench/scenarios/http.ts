/**
 * HTTP publish throughput: autocannon (in a load-generator process) POSTs events to
 * `POST /v1/channels/:channel/events` with the server's API key. When the server does not serve that endpoint
 * (404/405), the scenario says "endpoint not available" instead of measuring anything. autocannon's latency is
 * its own (not coordinated-omission corrected): it is shown, not used for a verdict.
 */

import { benchApiKey, padFor } from "../protocol.ts"
import type { ScenarioResult } from "../results.ts"
import { withRig } from "./result.ts"
import type { Context, Spec } from "./spec.ts"
import { waitForQuiet } from "./steps.ts"

const channel = "bench:http"

export const http = (ctx: Context, spec: Spec): Promise<ScenarioResult> =>
  withRig(ctx, spec, async (rig, result) => {
    if (spec.server !== "tidings") throw new Error("HTTP publish runs against tidings only")
    const url = `${rig.httpUrl}/v1/channels/${encodeURIComponent(channel)}/events`
    const body = JSON.stringify({ event: "tick", data: { s: 0, i: 0, t: 0, m: 0, p: padFor(spec.step.payloadBytes) } })
    const headers = { "content-type": "application/json", authorization: `Bearer ${benchApiKey}` }
    const probe = await fetch(url, { method: "POST", headers, body }).catch((error: Error) => error)
    if (probe instanceof Error || probe.status === 404 || probe.status === 405) {
      result.status = "skipped"
      result.reason = `endpoint not available (POST /v1/channels/:channel/events → ${probe instanceof Error ? probe.message : probe.status})`
      ctx.log(`  ${result.reason}`)
      return
    }
    if (probe.status >= 300) {
      throw new Error(`the publish endpoint refused the bench's request: ${probe.status} ${await probe.text()}`)
    }
    await waitForQuiet(spec.ladder.quietWaitMs)
    const endCpu = rig.cpu()
    const r = await rig.loadgen.http<{
      requestsPerSec: number
      total: number
      ok: number
      non2xx: number
      errors: number
      timeouts: number
      statusCodes: Record<string, unknown>
      latency: { count: number; p50: number; p90: number; p99: number; p999: number; max: number; mean: number }
    }>(
      {
        url,
        body,
        headers,
        connections: spec.connections,
        pipelining: 1,
        durationS: Math.max(1, Math.round(spec.durationMs / 1000))
      },
      spec.durationMs + 60_000
    )
    const cpu = endCpu()
    result.cpu = cpu
    result.latency = r.latency
    result.headline = {
      label: `publishes/s over HTTP (${spec.connections} connections)`,
      value: Math.round(r.requestsPerSec),
      unit: ""
    }
    result.rates = { ok: r.ok, non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts }
    if (r.non2xx > 0 || r.errors > 0)
      result.notes.push(`status codes ${JSON.stringify(r.statusCodes)}, errors ${r.errors}`)
    result.notes.push("latency from autocannon (not coordinated-omission corrected)")
    ctx.log(
      `  ${Math.round(r.requestsPerSec).toLocaleString("en-US")} publishes/s, p50 ${r.latency.p50} p99 ${r.latency.p99} ms, ` +
        `non-2xx ${r.non2xx}, errors ${r.errors}; cpu server ${Math.round(cpu.server ?? 0)}% loadgen ${Math.round(cpu.loadgen ?? 0)}%`
    )
  })
