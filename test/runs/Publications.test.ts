/**
 * Exactly-once publishing from runs (src/runs/Publications.ts), on the memory transport: a step executed again
 * (as after a crash) publishes at the same places, and the log keeps each place once; a stream that had begun
 * restarts with the application's marker; a retry after an append whose answer was lost is not mistaken for an
 * earlier execution's append.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as Protocol from "../../src/protocol/Protocol.ts"
import { ProtocolCodec } from "../../src/protocol/ProtocolCodec.ts"
import { publishAt, type StepPlace, streamAt } from "../../src/runs/Publications.ts"
import * as Memory from "../../src/transports/Memory.ts"
import * as Publisher from "../../src/transports/Publisher.ts"
import { TransportError, type TransportShape } from "../../src/transports/Transport.ts"

const TestProtocol = Protocol.make(
  "pubtest",
  Protocol.version({
    version: 1,
    events: {
      note: Schema.Struct({ text: Schema.String }),
      chunk: Schema.Struct({ text: Schema.String, restart: Schema.optionalKey(Schema.Boolean) })
    },
    commands: {}
  })
)

const codec = new ProtocolCodec(TestProtocol)
const restart = (data: unknown) => ({ ...(data as object), restart: true })
/** A fresh place for one execution of step `key`, as RunContext makes for each execution. */
const execution = (key: string): StepPlace => ({ key, next: 0 })

const log = (transport: TransportShape, channel: string) =>
  Effect.map(transport.read(channel, undefined, 1000), (read) =>
    read.entries.map(
      (e) =>
        `${e.event}:${(JSON.parse(e.data) as { text: string; restart?: boolean }).restart ? "!" : ""}${(JSON.parse(e.data) as { text: string }).text}`
    )
  )

/** What a client assembles from the chunks: a restart drops what came before. */
const assembled = (entries: ReadonlyArray<string>) => {
  let text = ""
  for (const entry of entries) {
    if (!entry.startsWith("chunk:")) continue
    const chunk = entry.slice("chunk:".length)
    text = chunk.startsWith("!") ? chunk.slice(1) : text + chunk
  }
  return text
}

describe("run publications", () => {
  it.effect("a step executed again publishes each place once: the log is as if it ran once", () =>
    Effect.gen(function* () {
      const transport = yield* Memory.make()
      const publisher = Publisher.make(transport, codec)
      const first = execution("exec-1/step-a")
      yield* publishAt(publisher, first, "c", "note", { text: "one" })
      yield* publishAt(publisher, first, "c", "note", { text: "two" })
      // the worker dies here; another executes the step again from its start
      const again = execution("exec-1/step-a")
      for (const text of ["one", "two", "three"]) yield* publishAt(publisher, again, "c", "note", { text })
      expect(yield* log(transport, "c")).toEqual(["note:one", "note:two", "note:three"])
      // another step, or another execution id, has places of its own
      yield* publishAt(publisher, execution("exec-1/step-b"), "c", "note", { text: "one" })
      yield* publishAt(publisher, execution("exec-2/step-a"), "c", "note", { text: "one" })
      expect((yield* log(transport, "c")).length).toBe(5)
    })
  )

  it.effect("a stream that had begun starts over with the restart marker; the client's message is the new one", () =>
    Effect.gen(function* () {
      const transport = yield* Memory.make()
      const publisher = Publisher.make(transport, codec)
      const first = execution("exec/answer")
      yield* publishAt(publisher, first, "c", "note", { text: "thinking" })
      const s1 = streamAt(publisher, first, "c", "chunk", restart)
      yield* s1.publish({ text: "Paris " })
      yield* s1.publish({ text: "is " })
      // crash; the step runs again and the model answers differently
      const again = execution("exec/answer")
      yield* publishAt(publisher, again, "c", "note", { text: "thinking" })
      const s2 = streamAt(publisher, again, "c", "chunk", restart)
      for (const text of ["The ", "capital ", "is ", "Paris"]) yield* s2.publish({ text })
      yield* publishAt(publisher, again, "c", "note", { text: "done" })
      const entries = yield* log(transport, "c")
      expect(entries).toEqual([
        "note:thinking",
        "chunk:Paris ",
        "chunk:is ",
        "chunk:!The ",
        "chunk:capital ",
        "chunk:is ",
        "chunk:Paris",
        "note:done"
      ])
      expect(assembled(entries)).toBe("The capital is Paris")
      // the publication after the stream kept its place whatever the stream's length: a third execution adds nothing
      const third = execution("exec/answer")
      yield* publishAt(publisher, third, "c", "note", { text: "thinking" })
      streamAt(publisher, third, "c", "chunk", restart)
      yield* publishAt(publisher, third, "c", "note", { text: "done" })
      expect((yield* log(transport, "c")).length).toBe(entries.length)
    })
  )

  it.effect("a stream that had not begun before the crash streams normally, without a marker", () =>
    Effect.gen(function* () {
      const transport = yield* Memory.make()
      const publisher = Publisher.make(transport, codec)
      yield* publishAt(publisher, execution("exec/answer"), "c", "note", { text: "thinking" })
      const again = execution("exec/answer")
      yield* publishAt(publisher, again, "c", "note", { text: "thinking" })
      const stream = streamAt(publisher, again, "c", "chunk", restart)
      for (const text of ["a", "b"]) yield* stream.publish({ text })
      expect(yield* log(transport, "c")).toEqual(["note:thinking", "chunk:a", "chunk:b"])
    })
  )

  // live clock: the retry backs off for real (50 ms)
  it.live("an append whose answer was lost is retried, and its own first append is not taken for a restart", () =>
    Effect.gen(function* () {
      const memory = yield* Memory.make()
      let failNext = 1
      // stores the entry, then loses the answer (a timeout after the broker applied it)
      const lossy: TransportShape = {
        ...memory,
        append: (channel, publication, options) =>
          Effect.flatMap(memory.append(channel, publication, options), (entry) =>
            failNext-- > 0
              ? Effect.fail(new TransportError({ message: "timed out", retryable: true }))
              : Effect.succeed(entry)
          )
      }
      const publisher = Publisher.make(lossy, codec)
      const stream = streamAt(publisher, execution("exec/answer"), "c", "chunk", restart)
      yield* stream.publish({ text: "a" })
      yield* stream.publish({ text: "b" })
      expect(yield* log(memory, "c")).toEqual(["chunk:a", "chunk:b"])
    })
  )
})
