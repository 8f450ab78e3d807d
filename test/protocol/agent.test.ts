/**
 * The built-in agent protocol: every schema of every version survives the JSON wire (property-based, with
 * values derived from the schemas by effect's Arbitrary engine through `it.prop`), the v1 ↔ v2 migration yields
 * valid values of the other version in every direction, the named limits hold, and the catalog types serve a
 * typed handler. Server and client behaviour with this protocol are tested under test/server and test/client.
 */
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { Schema } from "effect"
import {
  type AgentCommandName,
  type AgentCommandPayload,
  type AgentCommandResult,
  type AgentEvent,
  type AgentEventName,
  AgentProtocol,
  AgentV1,
  AgentV2,
  CommandsV1,
  EventsV1,
  EventsV2,
  MAX_ID_LENGTH,
  MAX_SCREENSHOT_BASE64_LENGTH,
  migrationV1V2
} from "../../src/protocol/agent/index.ts"
import type {
  AnyProtocol,
  CommandPayload,
  CommandResult,
  ErasedMigration,
  EventData,
  LatestOf,
  PlainSchema,
  VersionNumber,
  VersionOf
} from "../../src/protocol/Protocol.ts"

// ---- helpers ---------------------------------------------------------------------------------------------------

/**
 * A value as JSON can carry it: plain objects (generated values may have a null prototype) and no `-0`, which
 * JSON has no spelling for and which the generator deliberately produces at a lower bound of 0.
 */
const canonical = (value: unknown): unknown => {
  if (Object.is(value, -0)) return 0
  if (Array.isArray(value)) return value.map(canonical)
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.keys(value).map((key) => [key, canonical(Reflect.get(value, key))]))
  }
  return value
}

/** Encode, send as JSON text, parse, decode: the value must come back equal, and the wire must be plain JSON. */
const roundTrip = (schema: PlainSchema, value: unknown): void => {
  const encoded = Schema.encodeUnknownSync(schema)(value)
  const wire = JSON.stringify(encoded)
  const parsed: unknown = JSON.parse(wire)
  expect(canonical(parsed)).toStrictEqual(canonical(encoded))
  expect(canonical(Schema.decodeUnknownSync(schema)(parsed))).toStrictEqual(canonical(value))
}

/** Decodes as exactly this schema: a leftover field of the other version is an error, not silently dropped. */
const decodeStrict = (schema: PlainSchema, value: unknown): unknown =>
  Schema.decodeUnknownSync(schema)(value, { onExcessProperty: "error" })

const v1Events: Record<string, PlainSchema> = AgentV1.events
const v2Events: Record<string, PlainSchema> = AgentV2.events
const v1Commands: Record<string, { payload: PlainSchema; result: PlainSchema; error: PlainSchema }> = AgentV1.commands
const v2Commands: Record<string, { payload: PlainSchema; result: PlainSchema; error: PlainSchema }> = AgentV2.commands

/** The top-level keys of an encoded value. */
const keysOf = (value: unknown): Array<string> =>
  typeof value === "object" && value !== null ? Object.keys(value) : []

/** The migration as the runtime walks it. */
const erased: ErasedMigration = AgentProtocol.migrations[0]!

/** What each v2 event becomes for a v1 client (`undefined`: deliberately not sent). */
const eventDownTarget: Record<AgentEventName, string | undefined> = {
  message_chunk: "message_chunk",
  status: "status",
  browser_command: "browser_command",
  notification: "notification",
  error: "error",
  execution_update: "execution_update",
  step_update: "step_update",
  browser_update: "browser_update",
  checkpoint_required: "checkpoint_required",
  task_progress: "task_progress",
  completion: "completion",
  user_activity: "user_activity",
  checkpoint_resolved: "notification",
  usage: undefined
}
const downTargets: Record<string, string | undefined> = eventDownTarget

// ---- the catalog -----------------------------------------------------------------------------------------------

describe("agent protocol catalog", () => {
  it("has versions 1 and 2 joined by one migration, v2 the latest", () => {
    expect(AgentProtocol.name).toBe("agent")
    expect(AgentProtocol.versions.map((v) => v.version)).toEqual([1, 2])
    expect(AgentProtocol.latest).toBe(AgentV2)
    expect(AgentProtocol.migrations).toHaveLength(1)
    expect(AgentProtocol.migrations[0]).toBe(migrationV1V2)
  })

  it("names every event and command of the issue, in snake_case, on the wire", () => {
    const issueEvents = [
      "message_chunk",
      "status",
      "browser_command",
      "notification",
      "error",
      "execution_update",
      "step_update",
      "browser_update",
      "checkpoint_required",
      "task_progress",
      "completion",
      "user_activity"
    ]
    expect(Object.keys(AgentV1.events).sort()).toEqual([...issueEvents].sort())
    expect(Object.keys(AgentV2.events).sort()).toEqual([...issueEvents, "checkpoint_resolved", "usage"].sort())
    expect(Object.keys(eventDownTarget).sort()).toEqual(Object.keys(AgentV2.events).sort())
    for (const name of Object.keys(AgentV2.events)) expect(name).toMatch(/^[a-z]+(?:_[a-z]+)*$/)
    expect(Object.keys(AgentV1.commands).sort()).toEqual(["cancel", "feedback", "start"])
    expect(Object.keys(AgentV2.commands).sort()).toEqual(["cancel", "feedback", "start"])
  })

  it("streams browser_update as a latest value in both versions", () => {
    expect(AgentV1.latestValue).toEqual(["browser_update"])
    expect(AgentV2.latestValue).toEqual(["browser_update"])
  })

  it("documents every schema as JSON Schema (readable from other languages)", () => {
    const all: Array<PlainSchema> = [
      ...Object.values(v1Events),
      ...Object.values(v2Events),
      ...Object.values(v1Commands).flatMap((c) => [c.payload, c.result, c.error]),
      ...Object.values(v2Commands).flatMap((c) => [c.payload, c.result, c.error])
    ]
    for (const schema of all) {
      const doc = Schema.toJsonSchemaDocument(schema)
      expect(JSON.parse(JSON.stringify(doc.schema))).toEqual(doc.schema)
    }
  })
})

// ---- round trips -----------------------------------------------------------------------------------------------

const versions = [
  { label: "v1", events: v1Events, commands: v1Commands },
  { label: "v2", events: v2Events, commands: v2Commands }
] as const

for (const { label, events, commands } of versions) {
  describe(`agent ${label} round trips through JSON`, () => {
    for (const [name, schema] of Object.entries(events)) {
      it.prop(`event ${name}`, { data: schema }, ({ data }) => {
        roundTrip(schema, data)
        // Plain JSON data: no class instances and no `_tag` noise in events.
        expect(keysOf(Schema.encodeUnknownSync(schema)(data))).not.toContain("_tag")
      })
    }
    for (const [name, def] of Object.entries(commands)) {
      it.prop(`command ${name} payload`, { payload: def.payload }, ({ payload }) => roundTrip(def.payload, payload))
      it.prop(`command ${name} result`, { result: def.result }, ({ result }) => roundTrip(def.result, result))
      it.prop(`command ${name} error`, { error: def.error }, ({ error }) => {
        roundTrip(def.error, error)
        expect(keysOf(Schema.encodeUnknownSync(def.error)(error))).toContain("_tag")
      })
    }
  })
}

// ---- migrations on generated values ----------------------------------------------------------------------------

describe("agent v2 → v1 events", () => {
  for (const [name, schema] of Object.entries(v2Events)) {
    const target = downTargets[name]
    it.prop(`${name} → ${target ?? "(dropped)"}`, { data: schema }, ({ data }) => {
      const down = erased.eventDown({ event: name, data })
      if (target === undefined) {
        expect(down).toBeUndefined()
        return
      }
      expect(down?.event).toBe(target)
      const v1Schema = v1Events[target]!
      decodeStrict(v1Schema, down!.data)
      roundTrip(v1Schema, down!.data)
    })
  }
})

describe("agent v1 → v2 commands", () => {
  for (const [name, def] of Object.entries(v1Commands)) {
    it.prop(`${name} payload`, { payload: def.payload }, ({ payload }) => {
      const up = erased.commandUp({ name, payload })
      expect(up.name).toBe(name)
      decodeStrict(v2Commands[name]!.payload, up.payload)
    })
  }
})

describe("agent v2 → v1 replies", () => {
  for (const [name, def] of Object.entries(v2Commands)) {
    it.prop(`${name} result`, { result: def.result }, ({ result }) => {
      const down = erased.replyDown({ name, ok: true, result })
      expect(down.name).toBe(name)
      if (!down.ok) throw new Error("a result must stay a result")
      decodeStrict(v1Commands[name]!.result, down.result)
    })
    it.prop(`${name} error`, { error: def.error }, ({ error }) => {
      const down = erased.replyDown({ name, ok: false, error })
      expect(down.name).toBe(name)
      if (down.ok) throw new Error("an error must stay an error")
      decodeStrict(v1Commands[name]!.error, down.error)
    })
  }
})

// ---- migrations on chosen values: what each change means -------------------------------------------------------

describe("agent v1 ↔ v2 migration, case by case", () => {
  const down = (event: AgentEvent) => migrationV1V2.eventDown(event)

  it("sends a v2 screenshot object to v1 as a data URL and flattens the step", () => {
    expect(
      down({
        event: "step_update",
        data: {
          executionId: "e1",
          step: { id: "s1", number: 3 },
          status: "running",
          action: "click",
          explanation: "Opening the form",
          screenshot: { mime: "image/png", data: "iVBORw0K" }
        }
      })
    ).toEqual({
      event: "step_update",
      data: {
        executionId: "e1",
        stepId: "s1",
        stepNumber: 3,
        status: "running",
        action: "click",
        explanation: "Opening the form",
        screenshot: "data:image/png;base64,iVBORw0K"
      }
    })
  })

  it("drops a restarted message's flag for v1, which cannot say it: its chunk goes as it is", () => {
    const chunk = { messageId: "m1", role: "assistant" as const, text: "Again", done: false }
    expect(down({ event: "message_chunk", data: { ...chunk, restart: true } })).toEqual({
      event: "message_chunk",
      data: chunk
    })
    expect(down({ event: "message_chunk", data: chunk })).toEqual({ event: "message_chunk", data: chunk })
  })

  it("turns percent into a fraction and renames execution states back", () => {
    expect(
      down({
        event: "execution_update",
        data: { executionId: "e1", status: "awaiting_input", currentStep: 2, totalSteps: 4, progress: 50 }
      })
    ).toEqual({
      event: "execution_update",
      data: { executionId: "e1", status: "paused", currentStep: 2, progress: 0.5 }
    })
    expect(
      down({
        event: "task_progress",
        data: { taskId: "t1", kind: "install", stage: "unpack", progress: 100, message: "" }
      })
    ).toEqual({ event: "task_progress", data: { stage: "unpack", progress: 1, message: "" } })
  })

  it("maps new phases to the closest v1 phase and fills the v1-required detail", () => {
    expect(down({ event: "status", data: { phase: "retrieving" } })).toEqual({
      event: "status",
      data: { phase: "searching", detail: "" }
    })
  })

  it("renames error.stepId to step and drops retryable", () => {
    expect(
      down({ event: "error", data: { code: "timeout", message: "page did not load", stepId: "s2", retryable: true } })
    ).toEqual({ event: "error", data: { code: "timeout", message: "page did not load", step: "s2" } })
  })

  it("reports every completion outcome to v1 as success or failure", () => {
    expect(down({ event: "completion", data: { outcome: "succeeded", executionId: "e1", result: { n: 1 } } })).toEqual({
      event: "completion",
      data: { success: true, result: { n: 1 } }
    })
    expect(
      down({
        event: "completion",
        data: { outcome: "failed", executionId: "e1", error: { code: "blocked", message: "captcha" } }
      })
    ).toEqual({ event: "completion", data: { success: false, error: "blocked: captcha" } })
    expect(
      down({ event: "completion", data: { outcome: "cancelled", executionId: "e1", reason: "user asked" } })
    ).toEqual({ event: "completion", data: { success: false, error: "cancelled: user asked" } })
  })

  it("tells v1 about a resolved checkpoint with a notification and does not send usage", () => {
    expect(
      down({ event: "checkpoint_resolved", data: { executionId: "e1", stepId: "s1", by: "alice", answer: true } })
    ).toEqual({
      event: "notification",
      data: { level: "info", title: "Checkpoint resolved", message: "Step s1 was resolved by alice." }
    })
    expect(
      down({ event: "usage", data: { executionId: "e1", model: "m", inputTokens: 1, outputTokens: 2 } })
    ).toBeUndefined()
  })

  it("runs a v1 start in auto mode and keeps its context", () => {
    expect(
      migrationV1V2.commandUp({ name: "start", payload: { query: "find flights", context: { from: "OSL" } } })
    ).toEqual({ name: "start", payload: { query: "find flights", context: { from: "OSL" }, mode: "auto" } })
  })

  it("turns v1 feedback's stepId or question into a v2 target", () => {
    expect(
      migrationV1V2.commandUp({ name: "feedback", payload: { runId: "r1", stepId: "s1", answer: "yes" } })
    ).toEqual({
      name: "feedback",
      payload: { runId: "r1", target: { kind: "step", stepId: "s1" }, answer: "yes" }
    })
    expect(
      migrationV1V2.commandUp({ name: "feedback", payload: { runId: "r1", question: "Which date?", answer: "Friday" } })
    ).toEqual({
      name: "feedback",
      payload: { runId: "r1", target: { kind: "question", question: "Which date?" }, answer: "Friday" }
    })
  })

  it("answers v1 callers in v1 terms", () => {
    expect(migrationV1V2.replyDown({ name: "start", ok: true, result: { runId: "r1", channel: "run:r1" } })).toEqual({
      name: "start",
      ok: true,
      result: { runId: "r1" }
    })
    expect(
      migrationV1V2.replyDown({ name: "start", ok: false, error: { _tag: "ModeUnavailable", mode: "auto" } })
    ).toEqual({
      name: "start",
      ok: false,
      error: { _tag: "InvalidQuery", reason: 'mode "auto" is not available on this server' }
    })
    expect(
      migrationV1V2.replyDown({
        name: "start",
        ok: false,
        error: { _tag: "RunLimitReached", limit: 3, retryAfterMs: 1000 }
      })
    ).toEqual({ name: "start", ok: false, error: { _tag: "RunLimitReached", limit: 3 } })
    expect(migrationV1V2.replyDown({ name: "cancel", ok: true, result: { outcome: "already_finished" } })).toEqual({
      name: "cancel",
      ok: true,
      result: { cancelled: false }
    })
    expect(
      migrationV1V2.replyDown({ name: "feedback", ok: false, error: { _tag: "NotRunOwner", runId: "r1" } })
    ).toEqual({ name: "feedback", ok: false, error: { _tag: "RunNotFound", runId: "r1" } })
  })
})

// ---- limits ----------------------------------------------------------------------------------------------------

describe("agent protocol limits", () => {
  const accepts = (schema: PlainSchema, value: unknown) => Schema.is(schema)(value)

  it("bounds ids", () => {
    expect(accepts(CommandsV1.CancelPayload, { runId: "r".repeat(MAX_ID_LENGTH) })).toBe(true)
    expect(accepts(CommandsV1.CancelPayload, { runId: "r".repeat(MAX_ID_LENGTH + 1) })).toBe(false)
    expect(accepts(CommandsV1.CancelPayload, { runId: "" })).toBe(false)
  })

  it("bounds progress: a fraction in v1, a percentage in v2", () => {
    const v1 = (progress: number) => ({ executionId: "e", status: "running", currentStep: 0, progress })
    const v2 = (progress: number) => ({ ...v1(progress), status: "running" })
    expect(accepts(EventsV1.ExecutionUpdate, v1(1))).toBe(true)
    expect(accepts(EventsV1.ExecutionUpdate, v1(1.5))).toBe(false)
    expect(accepts(EventsV2.ExecutionUpdate, v2(100))).toBe(true)
    expect(accepts(EventsV2.ExecutionUpdate, v2(100.5))).toBe(false)
    expect(accepts(EventsV2.ExecutionUpdate, v2(-1))).toBe(false)
    expect(accepts(EventsV2.ExecutionUpdate, v2(Number.NaN))).toBe(false)
  })

  it("accepts a screenshot of the maximum size and refuses a larger one or bad base64", () => {
    const update = (data: string) => ({
      sessionId: "b1",
      url: "https://example.com/",
      screenshot: { mime: "image/jpeg", data }
    })
    expect(accepts(EventsV2.BrowserUpdate, update("A".repeat(MAX_SCREENSHOT_BASE64_LENGTH)))).toBe(true)
    expect(accepts(EventsV2.BrowserUpdate, update("A".repeat(MAX_SCREENSHOT_BASE64_LENGTH + 4)))).toBe(false)
    expect(accepts(EventsV2.BrowserUpdate, update("not base64!"))).toBe(false)
    expect(
      accepts(EventsV2.BrowserUpdate, { ...update("AAAA"), screenshot: { mime: "image/gif", data: "AAAA" } })
    ).toBe(false)
    const v1 = (screenshot: string) => ({ sessionId: "b1", url: "https://example.com/", screenshot })
    expect(accepts(EventsV1.BrowserUpdate, v1("data:image/webp;base64,AAAA"))).toBe(true)
    expect(accepts(EventsV1.BrowserUpdate, v1("https://example.com/shot.png"))).toBe(false)
  })

  it("refuses a v1 feedback that names neither a step nor a question", () => {
    expect(accepts(CommandsV1.FeedbackPayload, { runId: "r1", answer: "yes" })).toBe(false)
  })
})

// ---- types -----------------------------------------------------------------------------------------------------

describe("agent protocol types", () => {
  it("types a handler per command from the catalog", () => {
    const handlers: { readonly [K in AgentCommandName]: (payload: AgentCommandPayload<K>) => AgentCommandResult<K> } = {
      start: (payload) => ({ runId: "r1", channel: `run:${payload.mode}` }),
      cancel: () => ({ outcome: "cancelled" }),
      feedback: (payload) => ({ resumed: payload.target.kind === "step" })
    }
    const result: CommandResult<AgentV2, "start"> = handlers.start({ query: "q", mode: "browse" })
    expect(result).toEqual({ runId: "r1", channel: "run:browse" })

    // @ts-expect-error a v2 start result must say which channel the run publishes on
    const missingChannel: CommandResult<AgentV2, "start"> = { runId: "r1" }
    // @ts-expect-error v2 start requires a mode; only v1 callers get the default
    const missingMode: CommandPayload<AgentV2, "start"> = { query: "q" }
    const v1Start: CommandPayload<AgentV1, "start"> = { query: "q" }
    expect([missingChannel, missingMode, v1Start]).toHaveLength(3)
  })

  it("narrows events and versions", () => {
    expectTypeOf<EventData<AgentV1, "execution_update">["progress"]>().toEqualTypeOf<number>()
    expectTypeOf<EventData<AgentV2, "step_update">["step"]>().toEqualTypeOf<{
      readonly id: string
      readonly number: number
    }>()
    expectTypeOf<EventData<AgentV1, "step_update">["screenshot"]>().toEqualTypeOf<string | undefined>()
    expectTypeOf<AgentEventName>().toEqualTypeOf<keyof typeof AgentV2.events>()
    expectTypeOf<LatestOf<typeof AgentProtocol>>().toEqualTypeOf<AgentV2>()
    expectTypeOf<VersionOf<typeof AgentProtocol, 1>>().toEqualTypeOf<AgentV1>()
    expectTypeOf<VersionNumber<typeof AgentProtocol>>().toEqualTypeOf<1 | 2>()
    const accepted: AnyProtocol = AgentProtocol
    expect(accepted.name).toBe("agent")
    const phase = (event: AgentEvent): string | undefined => (event.event === "status" ? event.data.phase : undefined)
    expect(phase({ event: "status", data: { phase: "idle" } })).toBe("idle")
  })
})
