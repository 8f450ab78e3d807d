/**
 * What a node's `/readyz` said over a fault test, from the samples of `watchReady` (cluster.ts): the moments its
 * status changed (200 → 503 → 200, or 0 when nothing answered within the sampler's timeout), per node, as lines
 * to print, and how many samples got no answer. Sampling is watchReady's; judging the figures is the test's.
 */
import type { ReadySample } from "./cluster.ts"

export interface ReadyTimeline {
  readonly http: string
  /** Status changes: the first sample, then every sample whose status differs from the one before. */
  readonly changes: ReadonlyArray<ReadySample>
  readonly samples: number
  /** Samples that got no answer (status 0): /readyz hung or the process was gone. */
  readonly unanswered: number
  /** Total time spent not ready (any status but 200), in ms, counted between samples. */
  readonly notReadyMs: number
}

export const readyTimelines = (
  https: ReadonlyArray<string>,
  samples: ReadonlyArray<ReadySample>
): Array<ReadyTimeline> =>
  https.map((http) => {
    const own = samples.filter((s) => s.http === http).sort((a, b) => a.at - b.at)
    const changes = own.filter((s, i) => i === 0 || s.status !== own[i - 1]!.status)
    let notReadyMs = 0
    for (let i = 1; i < own.length; i++) if (own[i - 1]!.status !== 200) notReadyMs += own[i]!.at - own[i - 1]!.at
    return {
      http,
      changes,
      samples: own.length,
      unanswered: own.filter((s) => s.status === 0).length,
      notReadyMs
    }
  })

/** One line per node: `<name>: 200 at 0.0 s, 503 at 5.3 s, 200 at 13.2 s (…)`, times from `origin`. */
export const describeTimeline = (name: string, timeline: ReadyTimeline, origin: number): string => {
  const steps = timeline.changes.map((c) => `${c.status} at ${((c.at - origin) / 1000).toFixed(1)} s`).join(", ")
  return (
    `${name}: ${steps || "no sample"} (${timeline.samples} samples, ${timeline.unanswered} unanswered, ` +
    `not ready ${(timeline.notReadyMs / 1000).toFixed(1)} s)`
  )
}
