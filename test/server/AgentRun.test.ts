/**
 * The built-in agent protocol end to end with the simulated agent: start → streamed message, steps,
 * screenshots, checkpoint → feedback → completion; start → cancel → a final cancelled completion; a v1 client
 * follows the same run in its own version.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as SimulatedAgent from "../../src/agent/SimulatedAgent.ts"
import { AgentProtocol } from "../../src/protocol/agent/index.ts"
import * as Server from "../../src/server/Server.ts"
import * as Memory from "../../src/transports/Memory.ts"
import { connectRaw, type Frame, type RawClient } from "./support/rawClient.ts"
import { SECRET, sign } from "./support/testServer.ts"

const serverLayer = Server.layer({
  protocol: AgentProtocol,
  handlers: SimulatedAgent.handlers,
  port: 0,
  auth: { secret: SECRET }
}).pipe(Layer.provide(SimulatedAgent.runs({ beatMs: 5, steps: 4 })), Layer.provide(Memory.layer()))

const connect = (url: string, version: number) =>
  Effect.promise(async () => {
    const client = await connectRaw(url, { protocols: [`tidings.agent.v${version}.json`] })
    client.send({ type: "authenticate", token: await sign({ sub: "ann", channels: ["run:*"] }) })
    await client.next((f) => f.type === "welcome")
    return client
  })

const command = (client: RawClient, id: string, name: string, payload: object) =>
  Effect.promise(() => {
    client.send({ type: "command", id, name, payload })
    return client.next((f) => (f.type === "reply" || f.type === "error") && f.id === id)
  })

const waitFor = (client: RawClient, predicate: (f: Frame) => boolean) =>
  Effect.promise(() => client.next(predicate, 10_000))

layer(serverLayer, { excludeTestServices: true })("agent run", (it) => {
  it.effect("start → steps with screenshots → checkpoint → feedback → completion, for v2 and v1 at once", () =>
    Effect.gen(function* () {
      const server = yield* Server.TidingsServer
      const v2 = yield* connect(server.url, 2)
      const v1 = yield* connect(server.url, 1)
      const reply = yield* command(v2, "s", "start", { query: "cheap flights", mode: "research" })
      expect(reply).toMatchObject({ ok: true })
      const { runId, channel } = reply.result as { runId: string; channel: string }
      expect(channel).toBe(`run:${runId}`)
      for (const c of [v2, v1]) c.send({ type: "subscribe", channel, fromStart: true })
      const checkpoint = yield* waitFor(v2, (f) => f.type === "event" && f.event === "checkpoint_required")
      yield* waitFor(v1, (f) => f.type === "event" && f.event === "checkpoint_required")
      const stepId = (checkpoint.data as { stepId: string }).stepId
      // v1 answers with its own shape: stepId + string answer
      const answered = yield* command(v1, "f", "feedback", { runId, stepId, answer: "approve" })
      expect(answered).toMatchObject({ ok: true, result: { resumed: true } })
      const done2 = yield* waitFor(v2, (f) => f.type === "event" && f.event === "completion")
      const done1 = yield* waitFor(v1, (f) => f.type === "event" && f.event === "completion")
      expect(done2.data).toMatchObject({ outcome: "succeeded" })
      expect(done1.data).toMatchObject({ success: true })
      const steps2 = v2.events(channel).filter((e) => e.event === "step_update")
      const steps1 = v1.events(channel).filter((e) => e.event === "step_update")
      expect(steps2.length).toBe(8)
      expect((steps2.at(-1)!.data as { screenshot: { mime: string } }).screenshot.mime).toBe("image/png")
      expect((steps1.at(-1)!.data as { screenshot: string }).screenshot).toMatch(/^data:image\/png;base64,/)
      const text = v2
        .events(channel)
        .filter((e) => e.event === "message_chunk")
        .map((e) => (e.data as { text: string }).text)
        .join("")
      expect(text).toContain("cheap flights")
      // v2-only `usage`/`checkpoint_resolved` do not break v1: it saw every event it can see, in order
      const offsets1 = v1.events(channel).map((e) => e.offset as number)
      expect(offsets1).toEqual([...offsets1].sort((a, b) => a - b))
      expect(new Set(offsets1).size).toBe(offsets1.length)
      v1.close()
      v2.close()
    })
  )

  it.effect("start → cancel → a final cancelled completion on the run's channel", () =>
    Effect.gen(function* () {
      const server = yield* Server.TidingsServer
      const client = yield* connect(server.url, 2)
      const reply = yield* command(client, "s", "start", { query: "long job", mode: "auto" })
      const { runId, channel } = reply.result as { runId: string; channel: string }
      client.send({ type: "subscribe", channel, fromStart: true })
      yield* waitFor(client, (f) => f.type === "event" && f.event === "checkpoint_required")
      const cancelled = yield* command(client, "c", "cancel", { runId })
      expect(cancelled).toMatchObject({ ok: true, result: { outcome: "cancelled" } })
      const completion = yield* waitFor(client, (f) => f.type === "event" && f.event === "completion")
      expect(completion.data).toMatchObject({ outcome: "cancelled" })
      expect(yield* command(client, "c2", "cancel", { runId })).toMatchObject({
        ok: true,
        result: { outcome: "already_finished" }
      })
      expect(yield* command(client, "c3", "cancel", { runId: "nope" })).toMatchObject({
        ok: false,
        error: { _tag: "RunNotFound" }
      })
      client.close()
    })
  )
})
