/**
 * Compile-time checks of the client's typing: events, commands, results and errors follow the version the
 * app picked, and nothing widens to `any`. The protocol is defined here, independent of the agent protocol.
 * The assertions run under `tsc`; at runtime vitest only sees that the file loads.
 */
import { Effect, Schema, type Stream } from "effect"
import { describe, expectTypeOf, it } from "vitest"
import * as Client from "../../src/client/index.ts"
import * as Protocol from "../../src/protocol/Protocol.ts"

const v1 = Protocol.version({
  version: 1,
  events: {
    step_update: Schema.Struct({ step: Schema.Number, status: Schema.String }),
    notice: Schema.Struct({ text: Schema.String })
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
      progress: Schema.Number
    })
  },
  commands: {
    start: Protocol.command({
      payload: Schema.Struct({ query: Schema.String, context: Schema.optionalKey(Schema.String) }),
      result: Schema.Struct({ runId: Schema.String, queued: Schema.Boolean }),
      error: Schema.Union([
        Schema.Struct({ reason: Schema.Literal("busy") }),
        Schema.Struct({ reason: Schema.Literal("quota") })
      ])
    }),
    cancel: Protocol.command({
      payload: Schema.Struct({ runId: Schema.String }),
      result: Schema.Void,
      error: Schema.Never
    })
  }
})

const demo = Protocol.make("demo", v1).evolve(v2, {
  eventDown: (e) => ({ event: "step_update", data: { step: e.data.step, status: e.data.status } }),
  commandUp: (c) => ({ name: "start", payload: c.payload }),
  replyDown: (r) =>
    r.name === "start"
      ? r.ok
        ? { name: "start", ok: true, result: { runId: r.result.runId } }
        : { name: "start", ok: false, error: { reason: "busy" } }
      : { name: "start", ok: false, error: { reason: "busy" } }
})

// Never connects: the assertions below only need the types.
const typesOnly = false

describe("client typing", () => {
  it("types events, commands and errors by the chosen version", () => {
    if (!typesOnly) return
    const c2 = Client.make(demo, { url: "ws://x", version: 2 })
    expectTypeOf(c2.version).toEqualTypeOf<2>()

    c2.on("step_update", (data, meta) => {
      expectTypeOf(data).toEqualTypeOf<{
        readonly step: number
        readonly status: "running" | "done"
        readonly progress: number
      }>()
      expectTypeOf(meta).toEqualTypeOf<Client.EventMeta>()
    })
    // @ts-expect-error notice does not exist in v2
    c2.on("notice", () => {})

    expectTypeOf(c2.command("start", { query: "q" })).toEqualTypeOf<
      Promise<{ readonly runId: string; readonly queued: boolean }>
    >()
    expectTypeOf(c2.command("cancel", { runId: "r" })).toEqualTypeOf<Promise<void>>()
    // @ts-expect-error payload must match the v2 schema
    c2.command("start", { query: 1 })
    // @ts-expect-error unknown command
    c2.command("stop", {})

    const sub = c2.subscribe("run:1", {
      onEvent: (event) => {
        expectTypeOf(event.event).toEqualTypeOf<"step_update">()
        if (event.event === "step_update") expectTypeOf(event.data.progress).toEqualTypeOf<number>()
      }
    })
    sub.on("step_update", (data) => {
      expectTypeOf(data.status).toEqualTypeOf<"running" | "done">()
    })

    const c1 = Client.make(demo, { url: "ws://x", version: 1 })
    c1.on("notice", (data) => {
      expectTypeOf(data).toEqualTypeOf<{ readonly text: string }>()
    })
    c1.on("step_update", (data) => {
      expectTypeOf(data.status).toEqualTypeOf<string>()
    })
    expectTypeOf(c1.command("start", { query: "q" })).toEqualTypeOf<Promise<{ readonly runId: string }>>()
    // @ts-expect-error cancel does not exist in v1
    c1.command("cancel", { runId: "r" })

    // @ts-expect-error version 3 does not exist
    Client.make(demo, { url: "ws://x", version: 3 })
  })

  it("types the Effect API", () => {
    if (!typesOnly) return
    const program = Effect.gen(function* () {
      const client = yield* Client.makeEffect(demo, { url: "ws://x", version: 2 })
      const result = client.command("start", { query: "q" })
      expectTypeOf(result).toEqualTypeOf<
        Effect.Effect<
          { readonly runId: string; readonly queued: boolean },
          | Client.CommandFailed<{ readonly reason: "busy" } | { readonly reason: "quota" }>
          | Client.CommandRejected
          | Client.CommandTimeout
          | Client.Disconnected
          | Client.ProtocolViolation
        >
      >()
      const failed = yield* Effect.flip(client.command("start", { query: "q" }))
      if (failed._tag === "CommandFailed") {
        expectTypeOf(failed.error.reason).toEqualTypeOf<"busy" | "quota">()
      }
      expectTypeOf(client.events("run:1")).toEqualTypeOf<
        Stream.Stream<Client.ReceivedEvent<typeof v2> | Client.ResetNotice, Client.TerminalError>
      >()
      expectTypeOf(client.on("step_update")).toEqualTypeOf<
        Stream.Stream<
          {
            readonly data: { readonly step: number; readonly status: "running" | "done"; readonly progress: number }
            readonly meta: Client.EventMeta
          },
          Client.TerminalError
        >
      >()
    })
    void program
  })
})
