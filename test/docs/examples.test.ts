/**
 * The wire examples in the docs are real frames. Every ```json block of docs/*.md must parse; one whose value
 * is an object with a frame `type` must decode as a ClientFrame or a ServerFrame (no unknown fields), and an
 * `event`'s data or a `command`'s payload of the built-in agent protocol must match that event or command in
 * v1 or v2. A ```ndjson block is one WebSocket message carrying several frames, one per line; a line that is an
 * array is an event in the compact envelope, checked the same way.
 */
import { Result, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { AgentProtocol } from "../../src/protocol/agent/index.ts"
import { ClientFrame, CompactEvent, ServerFrame } from "../../src/protocol/Frames.ts"
import { ProtocolCodec } from "../../src/protocol/ProtocolCodec.ts"
import { allCodeBlocks, type CodeBlock } from "./support/markdown.ts"

const strict = { onExcessProperty: "error" } as const
const decodeClient = Schema.decodeUnknownResult(ClientFrame)
const decodeServer = Schema.decodeUnknownResult(ServerFrame)
const decodeCompact = Schema.decodeUnknownResult(CompactEvent)
const frameTypes: ReadonlySet<unknown> = new Set(
  [...ClientFrame.members, ...ServerFrame.members].map((member) => member.fields.type.schema.literal)
)
const codec = new ProtocolCodec(AgentProtocol)

/** What is wrong with one frame example, or undefined. */
const frameProblem = (value: unknown): string | undefined => {
  if (Array.isArray(value)) {
    const compact = decodeCompact(value, strict)
    if (Result.isFailure(compact)) return `not a valid compact event: ${compact.failure.message}`
    const [, , event, data] = compact.success
    return frameProblem({ type: "event", channel: "c", epoch: "e", offset: 0, event, data, time: 0 })
  }
  const asClient = decodeClient(value, strict)
  const asServer = decodeServer(value, strict)
  if (Result.isFailure(asClient) && Result.isFailure(asServer)) {
    return `not a valid frame:\n  as a client frame: ${asClient.failure.message}\n  as a server frame: ${asServer.failure.message}`
  }
  const frame = value as { type: string; event?: string; data?: unknown; name?: string; payload?: unknown }
  const versions = AgentProtocol.versions.map((v) => v.version)
  if (frame.type === "event" && versions.some((v) => codec.eventNames(v).includes(frame.event!))) {
    const ok = versions.some((v) => Result.isSuccess(codec.decodeEvent(frame.event!, frame.data, v)))
    if (!ok) return `event ${frame.event}: data matches neither agent v1 nor v2`
  }
  if (frame.type === "command" && versions.some((v) => codec.commandNames(v).includes(frame.name!))) {
    const ok = versions.some((v) => Result.isSuccess(codec.decodeCommand(frame.name!, frame.payload, v)))
    if (!ok) return `command ${frame.name}: payload matches neither agent v1 nor v2`
  }
  return undefined
}

const blockProblems = (block: CodeBlock): ReadonlyArray<string> => {
  const at = (offset: number) => `${block.file}:${block.line + offset}`
  if (block.language === "json") {
    let value: unknown
    try {
      value = JSON.parse(block.code)
    } catch (error) {
      return [`${at(0)}: not valid JSON (${(error as Error).message})`]
    }
    const type = typeof value === "object" && value !== null ? (value as { type?: unknown }).type : undefined
    const problem = frameTypes.has(type) ? frameProblem(value) : undefined
    return problem ? [`${at(0)}: ${problem}`] : []
  }
  if (block.language === "ndjson") {
    return block.code.split("\n").flatMap((line, i) => {
      if (line.trim() === "") return []
      let value: unknown
      try {
        value = JSON.parse(line)
      } catch (error) {
        return [`${at(i)}: not valid JSON (${(error as Error).message})`]
      }
      const problem = frameProblem(value)
      return problem ? [`${at(i)}: ${problem}`] : []
    })
  }
  return []
}

describe("docs wire examples", () => {
  it("every json block parses, and every frame example is a valid frame of its protocol", () => {
    const blocks = allCodeBlocks()
    const frames = blocks.filter((b) => b.language === "json" || b.language === "ndjson")
    expect(frames.filter((b) => b.file === "docs/protocol.md").length).toBeGreaterThan(10)
    expect(frames.flatMap(blockProblems)).toEqual([])
  })

  it("catches a wrong example", () => {
    const wrong = (code: string, language = "json"): CodeBlock => ({
      file: "docs/x.md",
      language,
      fileName: undefined,
      code,
      line: 1
    })
    expect(blockProblems(wrong('{"type": "subscribe"}'))).toHaveLength(1)
    expect(blockProblems(wrong('{"type": "ping", "extra": 1}'))).toHaveLength(1)
    expect(blockProblems(wrong("{nope"))).toHaveLength(1)
    expect(
      blockProblems(
        wrong(
          '{"type":"event","channel":"run:1","epoch":"e","offset":1,"event":"status","data":{"phase":"dancing"},"time":1}'
        )
      )
    ).toHaveLength(1)
    expect(blockProblems(wrong('{"type":"ping"}\n{"type":"pong"}\n{"type":"nope"}', "ndjson"))).toHaveLength(1)
    expect(blockProblems(wrong('{"type":"ping"}'))).toEqual([])
  })
})
