/**
 * HDR histograms of latency in microseconds: building one, shipping it between processes (compressed base64),
 * merging, and summarizing in milliseconds (p50, p90, p99, p99.9, max) plus a percentile curve for the charts.
 */
import * as hdr from "hdr-histogram-js"

export type Histogram = hdr.Histogram

export const make = (): Histogram =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 })

export const encode = (h: Histogram): string => hdr.encodeIntoCompressedBase64(h)

export const merge = (encoded: ReadonlyArray<string>): Histogram => {
  const total = make()
  for (const e of encoded) {
    if (!e) continue
    const h = hdr.decodeFromCompressedBase64(e)
    total.add(h)
    h.destroy()
  }
  return total
}

export interface LatencySummary {
  readonly count: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly p999: number
  readonly max: number
  readonly mean: number
}

const ms = (us: number) => Math.round(us) / 1000

export const summarize = (h: Histogram): LatencySummary => ({
  count: h.totalCount,
  p50: ms(h.getValueAtPercentile(50)),
  p90: ms(h.getValueAtPercentile(90)),
  p99: ms(h.getValueAtPercentile(99)),
  p999: ms(h.getValueAtPercentile(99.9)),
  max: ms(h.maxValue),
  mean: ms(h.mean)
})

/** Percentiles for a latency-by-percentile chart: [percentile, ms] from p0 to p99.999. */
export const curve = (h: Histogram): Array<[number, number]> => {
  if (h.totalCount === 0) return []
  const points = [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100]
  return points.map((p) => [p, ms(p === 100 ? h.maxValue : h.getValueAtPercentile(p))])
}
