/**
 * A small two-version protocol for the client's runtime tests, independent of the built-in agent protocol.
 * v2 carries a date field whose wire form (ISO string) differs from its typed form (Date), so the tests see
 * that the client really decodes events and replies and encodes payloads with the version's schemas.
 */
import { Schema } from "effect"
import * as Protocol from "../../../src/protocol/Protocol.ts"

const v1 = Protocol.version({
  version: 1,
  events: {
    step_update: Schema.Struct({ step: Schema.Number, status: Schema.String })
  },
  commands: {
    start: Protocol.command({
      payload: Schema.Struct({ query: Schema.String }),
      result: Schema.Struct({ runId: Schema.String }),
      error: Schema.Struct({ reason: Schema.Literal("busy") })
    })
  }
})

const v2 = Protocol.version({
  version: 2,
  events: {
    step_update: Schema.Struct({
      step: Schema.Number,
      status: Schema.Literals(["running", "done"]),
      at: Schema.DateFromString
    }),
    notice: Schema.Struct({ text: Schema.String })
  },
  commands: {
    start: Protocol.command({
      payload: Schema.Struct({ query: Schema.String, notBefore: Schema.optionalKey(Schema.DateFromString) }),
      result: Schema.Struct({ runId: Schema.String, at: Schema.DateFromString }),
      error: Schema.Struct({ reason: Schema.Literals(["busy", "quota"]), retryAfterMs: Schema.Number })
    }),
    cancel: Protocol.command({
      payload: Schema.Struct({ runId: Schema.String }),
      result: Schema.Struct({ cancelled: Schema.Boolean }),
      error: Schema.Never
    })
  }
})

export const demo = Protocol.make("demo", v1).evolve(v2, {
  eventDown: (e) =>
    e.event === "step_update"
      ? { event: "step_update", data: { step: e.data.step, status: e.data.status } }
      : undefined,
  commandUp: (c) => ({ name: "start", payload: { query: c.payload.query } }),
  replyDown: (r) =>
    r.name === "start" && r.ok
      ? { name: "start", ok: true, result: { runId: r.result.runId } }
      : { name: "start", ok: false, error: { reason: "busy" } }
})

/** v2 step_update in its wire form. */
export const step = (n: number, status: "running" | "done" = "running") => ({
  step: n,
  status,
  at: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString()
})
