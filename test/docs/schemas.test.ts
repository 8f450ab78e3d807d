/**
 * The JSON Schemas in docs/protocol/ are what the code generates: regenerated in memory from src/protocol
 * (scripts/generate-protocol-schemas.ts) and compared with the committed files, so a schema change that was
 * not regenerated (`npm run docs:schemas`) fails here. Also checks that every generated file stands alone
 * (each `$ref` resolves inside it) and that every protocol version is covered.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { committedFiles, drift, schemaFiles } from "../../scripts/generate-protocol-schemas.ts"
import { AgentProtocol } from "../../src/protocol/agent/index.ts"

describe("docs/protocol JSON Schemas", () => {
  it("match what the code generates (run `npm run docs:schemas` after changing a schema)", () => {
    expect(drift()).toEqual([])
  })

  it("cover the frames and the events, commands and replies of every agent protocol version", () => {
    const names = schemaFiles().map((file) => file.name)
    expect(names).toContain("frames.client.schema.json")
    expect(names).toContain("frames.server.schema.json")
    for (const { version } of AgentProtocol.versions) {
      for (const part of ["events", "commands", "replies"]) {
        expect(names).toContain(`agent.v${version}.${part}.schema.json`)
      }
    }
    expect(new Set(names).size).toBe(names.length)
  })

  it("are standalone draft 2020-12 documents whose references all resolve", () => {
    for (const [name, text] of committedFiles()) {
      const document = JSON.parse(text) as { $schema?: string; $defs?: Record<string, unknown> }
      expect(document.$schema, name).toBe("https://json-schema.org/draft/2020-12/schema")
      const references = [...text.matchAll(/"\$ref": "#\/\$defs\/([^"]+)"/g)].map((match) => match[1]!)
      const missing = references.filter((reference) => document.$defs?.[reference] === undefined)
      expect(missing, name).toEqual([])
    }
  })

  it("reports a changed, a missing and an extra file as drift", () => {
    const dir = mkdtempSync(join(tmpdir(), "tidings-schemas-"))
    try {
      const [first, second, ...rest] = schemaFiles()
      writeFileSync(join(dir, first!.name), first!.text.replace("tidings frames", "tidings frame"))
      for (const file of rest) writeFileSync(join(dir, file.name), file.text)
      writeFileSync(join(dir, "old.schema.json"), "{}\n")
      expect(drift(dir)).toEqual([
        `${first!.name}: differs from what the code generates`,
        `${second!.name}: missing`,
        "old.schema.json: no longer generated"
      ])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("is generated deterministically", () => {
    expect(schemaFiles()).toEqual(schemaFiles())
  })
})
