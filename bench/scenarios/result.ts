/**
 * Helpers every scenario uses to build its result: an empty result for a spec, a skip, a failure, and the
 * bracket that starts a rig, runs the body and always stops the rig (adding the server's CPU profile summary
 * when one was written).
 */
import { existsSync } from "node:fs"
import { profileSummary } from "../report/profile.ts"
import type { ScenarioResult } from "../results.ts"
import type { Rig } from "../rig.ts"
import type { Context, Spec } from "./spec.ts"

export const emptyResult = (spec: Spec): ScenarioResult => ({
  id: `${spec.scenario}/${spec.server}/${spec.transport}/${spec.clients}`,
  scenario: spec.scenario,
  server: spec.server,
  transport: spec.transport,
  clients: spec.clients,
  status: "ok",
  notes: []
})

export const withRig = async (
  ctx: Context,
  spec: Spec,
  body: (rig: Rig, result: ScenarioResult) => Promise<void>
): Promise<ScenarioResult> => {
  const result = emptyResult(spec)
  const started = performance.now()
  const rig = await ctx.rig(spec).catch((error: Error) => `could not start: ${error.message.split("\n")[0]}`)
  if (typeof rig === "string") {
    result.status = "skipped"
    result.reason = rig
    ctx.log(`  skipped: ${rig}`)
    return result
  }
  try {
    await body(rig, result)
  } catch (error) {
    result.status = "failed"
    result.reason = (error as Error).message.split("\n").slice(0, 3).join(" ")
    ctx.log(`  FAILED: ${result.reason}`)
  } finally {
    await rig.stop().catch(() => undefined)
    const path = rig.profilePath
    if (path && existsSync(path)) {
      result.profile = profileSummary(path, 15)
      result.notes.push(`server CPU profile: ${path}`)
    }
    result.durationMs = Math.round(performance.now() - started)
  }
  return result
}
