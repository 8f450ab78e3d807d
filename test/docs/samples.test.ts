/**
 * Every TypeScript sample in the docs compiles against the current source. Each ```ts / ```tsx block of
 * docs/<page>.md becomes one module in docs/.samples/<page>/ (gitignored) — named `NN.ts`, or by the block's
 * `file=NAME` so that other blocks of the same page can import it (`./protocol.ts`), as the files of one
 * small project would. A tsconfig generated in docs/.samples/ extends the
 * project's and maps the package's public entry points ("tidings", "tidings/client", ... — read from
 * package.json "exports") to src/, and `tsc` type-checks them all in one run. An error is reported at its line
 * in the Markdown file. Blocks that are not meant to compile use another language tag (sh, json, text).
 *
 * A canary module with a deliberate type error is checked in the same run and must be the only failure, so a
 * broken set-up (no files found, a path mapping that swallows errors) cannot pass silently. React samples compile
 * against React's own types (a development dependency; an optional peer of `tidings/react`).
 */
import { spawnSync } from "node:child_process"
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { allCodeBlocks, type CodeBlock, docsDir } from "./support/markdown.ts"

const root = fileURLToPath(new URL("../../", import.meta.url))
const samplesDir = join(docsDir, ".samples")
const typescriptLanguages = new Set(["ts", "typescript", "tsx"])
const CANARY = "__canary__.ts"

interface Sample {
  readonly block: CodeBlock
  /** Path inside docs/.samples/: `<page>/<file>`. */
  readonly path: string
}

/** Lines the sample file has above the block's first line (the header comment). */
const HEADER_LINES = 1

/** "./client" → "tidings/client", mapped to the source file whose declarations the export publishes. */
const pathsFromExports = (): Record<string, Array<string>> => {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    name: string
    exports: Record<string, unknown>
  }
  const typesOf = (target: unknown): string | undefined => {
    if (typeof target !== "object" || target === null) return undefined
    const conditions = target as Record<string, unknown>
    if (typeof conditions.types === "string") return conditions.types
    // conditional exports: the browser build is the strictest surface (no Node-only helpers)
    return typesOf(conditions.browser) ?? typesOf(conditions.default)
  }
  const paths: Record<string, Array<string>> = {}
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    const types = typesOf(target)
    const source = types && /^\.\/dist\/(.+)\.d\.ts$/.exec(types)
    if (!source) throw new Error(`package.json exports ${subpath}: no ./dist/*.d.ts types to map to src/`)
    const specifier = subpath === "." ? pkg.name : `${pkg.name}/${subpath.slice(2)}`
    paths[specifier] = [relative(samplesDir, join(root, "src", `${source[1]}.ts`))]
  }
  return paths
}

const writeSamples = (): ReadonlyArray<Sample> => {
  rmSync(samplesDir, { recursive: true, force: true })
  mkdirSync(samplesDir, { recursive: true })
  const counts = new Map<string, number>()
  const samples: Array<Sample> = []
  for (const block of allCodeBlocks()) {
    if (!typescriptLanguages.has(block.language)) continue
    const page = block.file.replace(/^docs\//, "").replace(/\.md$/, "")
    const n = (counts.get(page) ?? 0) + 1
    counts.set(page, n)
    const name = block.fileName ?? `${String(n).padStart(2, "0")}.${block.language === "tsx" ? "tsx" : "ts"}`
    const path = `${page}/${name}`
    if (samples.some((s) => s.path === path)) throw new Error(`${block.file}:${block.line}: a second file=${name}`)
    mkdirSync(join(samplesDir, page), { recursive: true })
    writeFileSync(join(samplesDir, path), `// ${block.file}:${block.line}\n${block.code}\n`)
    samples.push({ block, path })
  }
  writeFileSync(join(samplesDir, CANARY), `// canary: must fail to compile\nexport const canary: number = "text"\n`)
  const tsconfig = {
    extends: relative(samplesDir, join(root, "tsconfig.json")),
    compilerOptions: { noEmit: true, jsx: "react-jsx", paths: pathsFromExports() },
    include: ["./**/*.ts", "./**/*.tsx"]
  }
  writeFileSync(join(samplesDir, "tsconfig.json"), `${JSON.stringify(tsconfig, null, 2)}\n`)
  return samples
}

interface Diagnostic {
  readonly file: string
  readonly line: number
  readonly text: string
}

/** `docs/.samples/client/02.ts(7,3): error TS2345: ...` → its file, line and text (continuation lines kept). */
const parseDiagnostics = (output: string): ReadonlyArray<Diagnostic> => {
  const diagnostics: Array<{ file: string; line: number; text: string }> = []
  for (const line of output.split("\n")) {
    const match = /^(.*?)\((\d+),(\d+)\): (error .*)$/.exec(line)
    if (match) diagnostics.push({ file: match[1]!, line: Number(match[2]), text: match[4]! })
    else if (line.trim() !== "" && diagnostics.length > 0) diagnostics[diagnostics.length - 1]!.text += `\n${line}`
    else if (line.trim() !== "") diagnostics.push({ file: "", line: 0, text: line })
  }
  return diagnostics
}

describe("docs samples", () => {
  it("every TypeScript block in docs/*.md type-checks against the source", () => {
    const samples = writeSamples()
    // the docs that teach the API must carry compiled samples; fewer means the extraction broke
    for (const doc of ["getting-started", "client", "transports", "protocol", "security", "operations"]) {
      expect(
        samples.some((s) => s.block.file === `docs/${doc}.md`),
        `docs/${doc}.md has no ts block`
      ).toBe(true)
    }

    const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
    const result = spawnSync(process.execPath, [tsc, "-p", join(samplesDir, "tsconfig.json"), "--pretty", "false"], {
      cwd: root,
      encoding: "utf8"
    })
    const diagnostics = parseDiagnostics(`${result.stdout}${result.stderr}`)
    const byPath = new Map(samples.map((s) => [join(samplesDir, s.path), s.block]))
    const located = diagnostics.map((d) => {
      const block = byPath.get(join(root, d.file))
      return block === undefined
        ? `${d.file || "tsc"}${d.line ? `:${d.line}` : ""}: ${d.text}`
        : `${block.file}:${block.line + d.line - 1 - HEADER_LINES}: ${d.text}`
    })

    const canary = located.filter((text) => text.includes(CANARY))
    expect(canary, "the canary's type error was not reported: the check itself is broken").toHaveLength(1)
    expect(canary[0]).toContain("TS2322")
    expect(located.filter((text) => !text.includes(CANARY))).toEqual([])
  })
})
