/**
 * Hand-built SVG charts for the report (no dependencies, self-contained): a line chart with optional log axes
 * and a threshold line, and a horizontal bar chart with grouped values.
 */

export interface Series {
  readonly name: string
  readonly points: ReadonlyArray<readonly [number, number]>
  /** Points that failed (drawn hollow). */
  readonly failed?: ReadonlyArray<boolean>
}

const palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"]
export const color = (i: number): string => palette[i % palette.length]!

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

const niceNumber = (n: number): string => {
  const abs = Math.abs(n)
  if (abs >= 1e6) return `${Math.round((n / 1e6) * 10) / 10}M`
  if (abs >= 1e3) return `${Math.round((n / 1e3) * 10) / 10}k`
  if (abs >= 10 || abs === 0) return String(Math.round(n))
  return String(Math.round(n * 100) / 100)
}

const ticks = (min: number, max: number, log: boolean): Array<number> => {
  if (log) {
    const out: Array<number> = []
    for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e
        if (v >= min * 0.999 && v <= max * 1.001) out.push(v)
      }
    }
    return out
  }
  const span = max - min || 1
  const step = 10 ** Math.floor(Math.log10(span / 5))
  const unit = [1, 2, 5, 10].map((m) => m * step).find((s) => span / s <= 6) ?? step * 10
  const out: Array<number> = []
  for (let v = Math.ceil(min / unit) * unit; v <= max + 1e-9; v += unit) out.push(v)
  return out
}

export interface LineChart {
  readonly title: string
  readonly xLabel: string
  readonly yLabel: string
  readonly series: ReadonlyArray<Series>
  readonly xLog?: boolean
  readonly yLog?: boolean
  readonly threshold?: { readonly y: number; readonly label: string }
  /** Custom x tick labels (value → text), e.g. percentiles on a "nines" axis. */
  readonly xTicks?: ReadonlyArray<readonly [number, string]>
}

export const lineChart = (c: LineChart): string => {
  const W = 720
  const H = 360
  const left = 70
  const right = 170
  const top = 36
  const bottom = 48
  const all = c.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
  if (all.length === 0) return ""
  const pos = (v: number, log: boolean) => (log ? Math.max(v, 1e-3) : v)
  let [xmin, xmax] = [
    Math.min(...all.map((p) => pos(p[0], !!c.xLog))),
    Math.max(...all.map((p) => pos(p[0], !!c.xLog)))
  ]
  let ys = all.map((p) => pos(p[1], !!c.yLog))
  if (c.threshold) ys = [...ys, c.threshold.y]
  let [ymin, ymax] = [Math.min(...ys), Math.max(...ys)]
  if (!c.yLog) ymin = Math.min(0, ymin)
  if (xmin === xmax) [xmin, xmax] = [xmin * 0.9 || 0, xmax * 1.1 || 1]
  if (ymin === ymax) [ymin, ymax] = [ymin * 0.9, ymax * 1.1 || 1]
  if (c.yLog) [ymin, ymax] = [ymin / 1.3, ymax * 1.3]
  const tx = (x: number) => {
    const v = pos(x, !!c.xLog)
    const f = c.xLog ? Math.log(v / xmin) / Math.log(xmax / xmin) : (v - xmin) / (xmax - xmin)
    return left + f * (W - left - right)
  }
  const ty = (y: number) => {
    const v = pos(y, !!c.yLog)
    const f = c.yLog ? Math.log(v / ymin) / Math.log(ymax / ymin) : (v - ymin) / (ymax - ymin)
    return H - bottom - f * (H - top - bottom)
  }
  const parts: Array<string> = []
  parts.push(`<text x="${W / 2 - right / 2}" y="20" text-anchor="middle" font-weight="600">${esc(c.title)}</text>`)
  for (const v of ticks(ymin, ymax, !!c.yLog)) {
    parts.push(
      `<line x1="${left}" x2="${W - right}" y1="${ty(v)}" y2="${ty(v)}" stroke="#e5e7eb"/>`,
      `<text x="${left - 6}" y="${ty(v) + 4}" text-anchor="end" font-size="11">${niceNumber(v)}</text>`
    )
  }
  const xt = c.xTicks ?? ticks(xmin, xmax, !!c.xLog).map((v) => [v, niceNumber(v)] as const)
  for (const [v, text] of xt) {
    parts.push(
      `<line x1="${tx(v)}" x2="${tx(v)}" y1="${top}" y2="${H - bottom}" stroke="#f3f4f6"/>`,
      `<text x="${tx(v)}" y="${H - bottom + 16}" text-anchor="middle" font-size="11">${esc(text)}</text>`
    )
  }
  parts.push(
    `<rect x="${left}" y="${top}" width="${W - left - right}" height="${H - top - bottom}" fill="none" stroke="#9ca3af"/>`,
    `<text x="${(left + W - right) / 2}" y="${H - 10}" text-anchor="middle" font-size="12">${esc(c.xLabel)}</text>`,
    `<text x="16" y="${(top + H - bottom) / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 16 ${(top + H - bottom) / 2})">${esc(c.yLabel)}</text>`
  )
  if (c.threshold) {
    const y = ty(c.threshold.y)
    parts.push(
      `<line x1="${left}" x2="${W - right}" y1="${y}" y2="${y}" stroke="#ef4444" stroke-dasharray="6 4"/>`,
      `<text x="${W - right - 4}" y="${y - 4}" text-anchor="end" font-size="11" fill="#ef4444">${esc(c.threshold.label)}</text>`
    )
  }
  c.series.forEach((s, i) => {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
    if (pts.length === 0) return
    parts.push(
      `<polyline fill="none" stroke="${color(i)}" stroke-width="2" points="${pts.map(([x, y]) => `${tx(x).toFixed(1)},${ty(y).toFixed(1)}`).join(" ")}"/>`
    )
    pts.forEach(([x, y], k) => {
      const hollow = s.failed?.[k] === true
      parts.push(
        `<circle cx="${tx(x).toFixed(1)}" cy="${ty(y).toFixed(1)}" r="3.5" fill="${hollow ? "white" : color(i)}" stroke="${color(i)}" stroke-width="1.5"><title>${esc(`${s.name}: ${niceNumber(x)} → ${y}`)}</title></circle>`
      )
    })
    parts.push(
      `<rect x="${W - right + 12}" y="${top + i * 18}" width="12" height="3" fill="${color(i)}" transform="translate(0 5)"/>`,
      `<text x="${W - right + 30}" y="${top + i * 18 + 10}" font-size="11">${esc(s.name)}</text>`
    )
  })
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="system-ui, sans-serif">${parts.join("")}</svg>`
}

export interface Bar {
  readonly label: string
  readonly values: ReadonlyArray<{ readonly name: string; readonly value: number }>
}

export const barChart = (c: {
  readonly title: string
  readonly unit: string
  readonly bars: ReadonlyArray<Bar>
}): string => {
  if (c.bars.length === 0) return ""
  const names = [...new Set(c.bars.flatMap((b) => b.values.map((v) => v.name)))]
  const W = 720
  const left = 210
  const right = 90
  const rowH = 16
  const groupGap = 10
  const top = 34
  const rows = c.bars.reduce((n, b) => n + b.values.length, 0)
  const H = top + rows * rowH + c.bars.length * groupGap + 30
  const max = Math.max(1e-9, ...c.bars.flatMap((b) => b.values.map((v) => v.value)))
  const parts: Array<string> = [
    `<text x="${W / 2}" y="20" text-anchor="middle" font-weight="600">${esc(c.title)}</text>`
  ]
  let y = top
  for (const bar of c.bars) {
    parts.push(`<text x="${left - 8}" y="${y + 12}" text-anchor="end" font-size="12">${esc(bar.label)}</text>`)
    for (const v of bar.values) {
      const w = (v.value / max) * (W - left - right)
      const i = names.indexOf(v.name)
      parts.push(
        `<rect x="${left}" y="${y + 2}" width="${Math.max(0.5, w).toFixed(1)}" height="${rowH - 4}" fill="${color(i)}"><title>${esc(`${bar.label} ${v.name}: ${v.value}`)}</title></rect>`,
        `<text x="${left + w + 4}" y="${y + 12}" font-size="11">${niceNumber(v.value)}${esc(c.unit)}</text>`
      )
      y += rowH
    }
    y += groupGap
  }
  names.forEach((n, i) => {
    parts.push(
      `<rect x="${left + i * 150}" y="${H - 18}" width="10" height="10" fill="${color(i)}"/>`,
      `<text x="${left + i * 150 + 14}" y="${H - 9}" font-size="11">${esc(n)}</text>`
    )
  })
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="system-ui, sans-serif">${parts.join("")}</svg>`
}
