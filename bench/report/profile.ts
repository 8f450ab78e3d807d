/**
 * Reads a V8 CPU profile (`node --cpu-prof` of the server under test) and lists the functions with the most self
 * time, so a missed target comes with the reason next to it.
 */
import { readFileSync } from "node:fs"
import { relative } from "node:path"

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly hitCount?: number
}

interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples?: ReadonlyArray<number>
}

const where = (url: string, line: number): string => {
  if (!url) return ""
  const path = url.startsWith("file://") ? url.slice(7) : url
  const short = path.includes("node_modules/")
    ? path.slice(path.lastIndexOf("node_modules/") + 13)
    : relative(process.cwd(), path)
  return ` ${short}:${line + 1}`
}

/** The `top` functions by self time, as a percentage of all samples (idle included, named "(idle)"). */
export const profileSummary = (path: string, top: number): Array<{ fn: string; selfPct: number }> => {
  const profile = JSON.parse(readFileSync(path, "utf8")) as Profile
  const hits = new Map<number, number>()
  if (profile.samples) for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1)
  else for (const n of profile.nodes) hits.set(n.id, n.hitCount ?? 0)
  const byFunction = new Map<string, number>()
  let total = 0
  for (const node of profile.nodes) {
    const count = hits.get(node.id) ?? 0
    if (count === 0) continue
    total += count
    const name = `${node.callFrame.functionName || "(anonymous)"}${where(node.callFrame.url, node.callFrame.lineNumber)}`
    byFunction.set(name, (byFunction.get(name) ?? 0) + count)
  }
  return [...byFunction.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, count]) => ({ fn, selfPct: Math.round((count / Math.max(1, total)) * 1000) / 10 }))
}
