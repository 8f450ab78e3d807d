/**
 * A run's execution id is computed from its definition's name and run id alone (so a gateway can address a run
 * knowing only its id): it must be the one Effect Workflow derives from the full payload.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as Protocol from "../../src/protocol/Protocol.ts"
import * as RunDefinition from "../../src/runs/RunDefinition.ts"

const P = Protocol.make("defs", Protocol.version({ version: 1, events: {}, commands: {} }))

describe("run definitions", () => {
  it.effect("executionId(runId) is Workflow.executionId of any payload with that run id", () =>
    Effect.gen(function* () {
      const definition = RunDefinition.make(P, "Research", { input: Schema.Struct({ topic: Schema.String }) })
      for (const runId of ["a", "x7-Yz_0", "é/日本"]) {
        const fromEngine = yield* definition.workflow.executionId({
          runId,
          owner: "ann",
          channel: `run:${runId}`,
          input: { topic: "t" }
        })
        expect(yield* definition.executionId(runId)).toBe(fromEngine)
      }
    })
  )

  it("refuses names a log line or storage key would mangle", () => {
    expect(() => RunDefinition.make(P, "has space", { input: Schema.String })).toThrow(/run name "has space"/)
    expect(() => RunDefinition.checkName("step", "")).toThrow(/step name/)
    expect(() => RunDefinition.checkName("step", "step-1.a:b_c")).not.toThrow()
  })
})
