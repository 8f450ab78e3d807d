/**
 * Imports in src/ flow one way: no module imports itself through others, type-only imports included (a cycle of
 * types still ties the modules together for a reader and for the bundler). Lists every cycle found.
 */
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, normalize, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const root = fileURLToPath(new URL("../../", import.meta.url))
const src = join(root, "src")

const sourceFiles = (dir: string): Array<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return entry.name.endsWith(".ts") ? [path] : []
  })

const IMPORT = /(?:import|export)\s[^"']*?from\s+["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/g

/** Strongly connected groups of more than one module (Tarjan). */
const cycles = (graph: Map<string, ReadonlyArray<string>>): Array<Array<string>> => {
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: Array<string> = []
  const onStack = new Set<string>()
  const found: Array<Array<string>> = []
  let counter = 0
  const visit = (v: string) => {
    index.set(v, counter)
    low.set(v, counter++)
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) === index.get(v)) {
      const group: Array<string> = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        group.push(w)
      } while (w !== v)
      if (group.length > 1) found.push(group.sort())
    }
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return found
}

describe("src imports", () => {
  it("form no cycle", () => {
    const files = sourceFiles(src)
    const known = new Set(files)
    const graph = new Map<string, ReadonlyArray<string>>()
    for (const file of files) {
      const text = readFileSync(file, "utf8")
      const targets = [...text.matchAll(IMPORT)]
        .map((m) => normalize(join(dirname(file), m[1] ?? m[2]!)))
        .filter((target) => known.has(target))
      graph.set(file, targets)
    }
    expect(files.length).toBeGreaterThan(50)
    expect(cycles(graph).map((group) => group.map((f) => relative(root, f)))).toEqual([])
  })
})
