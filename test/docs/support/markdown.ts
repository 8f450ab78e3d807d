/**
 * Reads the fenced code blocks of the user docs (docs/*.md and README.md), with the line each starts on, for the tests that
 * compile the TypeScript samples and check the JSON examples. Knows Markdown fences only, nothing of what the
 * blocks mean.
 */
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

export const docsDir = fileURLToPath(new URL("../../../docs/", import.meta.url))

export interface CodeBlock {
  /** The Markdown file, relative to the repository root (e.g. `docs/client.md`). */
  readonly file: string
  /** First word of the info string (`ts`, `json`, `sh`...), lower-cased; "" for a bare fence. */
  readonly language: string
  /** `file=NAME` in the info string: the module name other blocks of the same page import it by. */
  readonly fileName: string | undefined
  /** The code, without the fences. */
  readonly code: string
  /** 1-based line of the code's first line in `file`. */
  readonly line: number
}

const fence = /^\s*(`{3,}|~{3,})\s*([^`\s]*)(.*)$/

/** The fenced code blocks of one Markdown text, in order. */
export const codeBlocks = (file: string, markdown: string): ReadonlyArray<CodeBlock> => {
  const lines = markdown.split("\n")
  const blocks: Array<CodeBlock> = []
  let open:
    | { marker: string; language: string; fileName: string | undefined; start: number; body: Array<string> }
    | undefined
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!
    if (open === undefined) {
      const match = fence.exec(text)
      if (match) {
        const fileName = /(?:^|\s)file=(\S+)/.exec(match[3]!)?.[1]
        open = { marker: match[1]!, language: match[2]!.toLowerCase(), fileName, start: i + 2, body: [] }
      }
      continue
    }
    const trimmed = text.trim()
    if (trimmed.startsWith(open.marker) && trimmed.replaceAll(open.marker[0]!, "") === "") {
      const { language, fileName, start } = open
      blocks.push({ file, language, fileName, code: open.body.join("\n"), line: start })
      open = undefined
    } else {
      open.body.push(text)
    }
  }
  if (open !== undefined) throw new Error(`${file}: the code block opened at line ${open.start - 1} is never closed`)
  return blocks
}

/** Every `docs/*.md` file name, sorted. */
export const docFiles = (): ReadonlyArray<string> =>
  readdirSync(docsDir)
    .filter((name) => name.endsWith(".md"))
    .sort()

/** The code blocks of every `docs/*.md`, and of the README (its first lines are what newcomers copy). */
export const allCodeBlocks = (): ReadonlyArray<CodeBlock> => [
  ...docFiles().flatMap((name) => codeBlocks(`docs/${name}`, readFileSync(join(docsDir, name), "utf8"))),
  ...codeBlocks("README.md", readFileSync(join(docsDir, "..", "README.md"), "utf8"))
]
