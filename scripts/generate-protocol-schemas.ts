/**
 * Generates docs/protocol/: the JSON Schema (draft 2020-12) of every version of the built-in agent protocol —
 * its events, its commands and its replies — and of the framework's own frames (ClientFrame, ServerFrame), from
 * the Effect Schemas in src/protocol with `Schema.toJsonSchemaDocument`.
 *
 *   npm run docs:schemas            writes the files (and removes stale ones)
 *   npm run docs:schemas -- --check exits 1 when the committed files differ from what the code generates
 *
 * Output is deterministic (schema order, two-space JSON, trailing newline), so test/docs/schemas.test.ts can
 * regenerate it in memory and fail on drift. This file owns the layout of docs/protocol/; the schemas
 * themselves belong to src/protocol.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { JsonSchema, Schema } from "effect"
import { AgentProtocol } from "../src/protocol/agent/index.ts"
import { ClientFrame, CompactEvent, ServerFrame } from "../src/protocol/Frames.ts"
import type { AnyProtocol, CommandDef, VersionDef } from "../src/protocol/Protocol.ts"

/** Where the generated files live. */
export const outputDir = fileURLToPath(new URL("../docs/protocol/", import.meta.url))

export interface SchemaFile {
  /** File name inside docs/protocol/. */
  readonly name: string
  readonly text: string
}

type AnySchema = Schema.Top

/** One standalone JSON Schema file: `$schema`, a title, the root schema and its `$defs`. */
const render = (name: string, title: string, description: string, schema: AnySchema): SchemaFile => {
  const document = Schema.toJsonSchemaDocument(schema)
  const definitions = Object.keys(document.definitions).length > 0 ? { $defs: document.definitions } : {}
  const json = {
    $schema: JsonSchema.META_SCHEMA_URI_DRAFT_2020_12,
    title,
    description,
    ...document.schema,
    ...definitions
  }
  return { name, text: `${JSON.stringify(json, null, 2)}\n` }
}

/** A union of one or more members (a single member needs no union). */
const unionOf = (members: ReadonlyArray<AnySchema>): AnySchema =>
  members.length === 1 ? members[0]! : Schema.Union(members)

/** `{ "event": "<name>", "data": <schema> }` for each event of a version: the event part of an `event` frame. */
const eventsOf = (version: VersionDef): AnySchema =>
  unionOf(Object.entries(version.events).map(([name, data]) => Schema.Struct({ event: Schema.Literal(name), data })))

/** `{ "name": "<command>", "payload": <schema> }` for each command: the name and payload of a `command` frame. */
const commandsOf = (version: VersionDef): AnySchema =>
  unionOf(
    Object.entries(version.commands).map(([name, command]: [string, CommandDef]) =>
      Schema.Struct({ name: Schema.Literal(name), payload: command.payload })
    )
  )

/**
 * `{ "name", "ok": true, "result" }` or `{ "name", "ok": false, "error" }` for each command. On the wire a
 * `reply` frame carries the command's `id` instead of its name; this schema says which result and error belong
 * to which command.
 */
const repliesOf = (version: VersionDef): AnySchema =>
  unionOf(
    Object.entries(version.commands).flatMap(([name, command]: [string, CommandDef]) => [
      Schema.Struct({ name: Schema.Literal(name), ok: Schema.Literal(true), result: command.result }),
      Schema.Struct({ name: Schema.Literal(name), ok: Schema.Literal(false), error: command.error })
    ])
  )

/** The events, commands and replies of every version of `protocol`. */
export const protocolFiles = (protocol: AnyProtocol): ReadonlyArray<SchemaFile> =>
  protocol.versions.flatMap((version) => {
    const base = `${protocol.name}.v${version.version}`
    const label = `${protocol.name} protocol v${version.version}`
    return [
      render(
        `${base}.events.schema.json`,
        `${label}: events`,
        'The `event` and `data` of an `event` frame, one member per event (subprotocol "' +
          `tidings.${protocol.name}.v${version.version}.json").`,
        eventsOf(version)
      ),
      render(
        `${base}.commands.schema.json`,
        `${label}: commands`,
        "The `name` and `payload` of a `command` frame, one member per command.",
        commandsOf(version)
      ),
      render(
        `${base}.replies.schema.json`,
        `${label}: replies`,
        "What a `reply` frame answers to each command: `result` when `ok` is true, `error` when it is false " +
          "(the frame itself carries the command's `id`, not its name).",
        repliesOf(version)
      )
    ]
  })

/** Every file of docs/protocol/, in a stable order. */
export const schemaFiles = (): ReadonlyArray<SchemaFile> => [
  render(
    "frames.client.schema.json",
    "tidings frames: client → server",
    "Every frame a client sends, whatever the application protocol. `payload` of `command` is checked " +
      "separately against the negotiated protocol version.",
    ClientFrame
  ),
  render(
    "frames.server.schema.json",
    "tidings frames: server → client",
    "Every frame a server sends, whatever the application protocol: an object with a `type`, or, on a " +
      "connection that negotiated the compact envelope, an event as an array [alias, offset, event, data, time]. " +
      "`data` of an event and `result`/`error` of `reply` are checked separately against the negotiated " +
      "protocol version.",
    Schema.Union([ServerFrame, CompactEvent])
  ),
  ...protocolFiles(AgentProtocol)
]

/** The committed files: name → text. */
export const committedFiles = (dir: string = outputDir): ReadonlyMap<string, string> => {
  const files = new Map<string, string>()
  let names: Array<string> = []
  try {
    names = readdirSync(dir).filter((name) => name.endsWith(".json"))
  } catch {
    return files
  }
  for (const name of names.sort()) files.set(name, readFileSync(join(dir, name), "utf8"))
  return files
}

/** Names of the files that are missing, stale or extra in `dir` compared with what the code generates. */
export const drift = (dir: string = outputDir): ReadonlyArray<string> => {
  const committed = committedFiles(dir)
  const generated = schemaFiles()
  const problems: Array<string> = []
  for (const file of generated) {
    const text = committed.get(file.name)
    if (text === undefined) problems.push(`${file.name}: missing`)
    else if (text !== file.text) problems.push(`${file.name}: differs from what the code generates`)
  }
  const names = new Set(generated.map((file) => file.name))
  for (const name of committed.keys()) if (!names.has(name)) problems.push(`${name}: no longer generated`)
  return problems
}

const main = (args: ReadonlyArray<string>): number => {
  if (args.includes("--check")) {
    const problems = drift()
    for (const problem of problems) process.stderr.write(`docs/protocol/${problem}\n`)
    if (problems.length > 0) process.stderr.write("run `npm run docs:schemas` and commit docs/protocol/\n")
    return problems.length > 0 ? 1 : 0
  }
  const generated = schemaFiles()
  const names = new Set(generated.map((file) => file.name))
  mkdirSync(outputDir, { recursive: true })
  for (const name of committedFiles().keys()) if (!names.has(name)) rmSync(join(outputDir, name))
  for (const file of generated) writeFileSync(join(outputDir, file.name), file.text)
  process.stdout.write(`wrote ${generated.length} JSON Schemas to docs/protocol/\n`)
  return 0
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2))
}
