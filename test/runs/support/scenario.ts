/**
 * The run scenario every deployment must pass (test/runs/Scenario*.test.ts): the simulated agent started over one
 * gateway and followed, answered and cancelled over another (the same one when there is only one).
 *
 * 1. A run: started by ann on gateway 0; followed on both gateways; its checkpoint answered from the last gateway;
 *    it completes, and its channel holds each event once, in offset order, with the whole streamed message.
 * 2. A second run: cancelled from the last gateway while it waits at its checkpoint; it ends with exactly one
 *    cancelled completion; a second cancel answers `already_finished`; bob may neither cancel nor answer it.
 * 3. Unknown runs answer RunNotFound; a checkpoint that is not pending answers CheckpointNotPending.
 */
import { expect } from "vitest"
import { connectRaw, type Frame, type RawClient } from "../../server/support/rawClient.ts"
import { sign } from "../../server/support/testServer.ts"

export interface Deployment {
  /** WebSocket URLs of the gateways (at least one). */
  readonly gateways: ReadonlyArray<string>
  /** The HS256 secret the gateways verify tokens with. */
  readonly secret: string
  /** Where a run stands, when the deployment can ask (RunClient.get in process). */
  readonly state?: (
    runId: string
  ) => Promise<{ readonly state: string; readonly cancelReason: string | null } | undefined>
}

/** The words the simulated agent streams for `query` (src/agent/SimulatedAgent.ts). */
export const answerText = (query: string) =>
  `Here is what I found about "${query.slice(0, 80)}". I searched, read three pages, and checked the details step by step.`

export const connectAs = async (url: string, user: string, secret: string): Promise<RawClient> => {
  const client = await connectRaw(url, { protocols: ["tidings.agent.v2.json"] })
  client.send({ type: "authenticate", token: await sign({ sub: user, channels: ["run:*"] }, { secret }) })
  await client.next((f) => f.type === "welcome")
  return client
}

let commandId = 0
export const command = async (client: RawClient, name: string, payload: object, timeoutMs = 15_000) => {
  const id = `c${++commandId}`
  client.send({ type: "command", id, name, payload })
  return client.next((f) => (f.type === "reply" || f.type === "error") && f.id === id, timeoutMs)
}

export const eventOn = (client: RawClient, channel: string, event: string, timeoutMs = 30_000) =>
  client.next((f) => f.type === "event" && f.channel === channel && f.event === event, timeoutMs)

/** Offsets of a channel's events as one client received them: contiguous from 1, each once. */
export const expectWholeLog = (events: ReadonlyArray<Frame>) => {
  const offsets = events.map((e) => e.offset as number)
  expect(offsets).toEqual(Array.from({ length: offsets.length }, (_, i) => i + 1))
}

/** The message a client assembles from a channel's chunks, honouring `restart`. */
export const assembled = (events: ReadonlyArray<Frame>): string => {
  let text = ""
  for (const e of events) {
    if (e.event !== "message_chunk") continue
    const chunk = e.data as { text: string; restart?: boolean }
    text = chunk.restart ? chunk.text : text + chunk.text
  }
  return text
}

export const runScenario = async ({ gateways, secret, state }: Deployment): Promise<void> => {
  const first = gateways[0]!
  const last = gateways[gateways.length - 1]!
  const a = await connectAs(first, "ann", secret)
  const b = await connectAs(last, "ann", secret)
  const bob = await connectAs(last, "bob", secret)
  try {
    // 1. start on one gateway, answer on another, complete
    const started = await command(a, "start", { query: "cheap flights", mode: "research" })
    expect(started).toMatchObject({ type: "reply", ok: true })
    const { runId, channel } = started.result as { runId: string; channel: string }
    expect(channel).toBe(`run:${runId}`)
    for (const c of [a, b]) c.send({ type: "subscribe", channel, fromStart: true })
    const checkpoint = await eventOn(b, channel, "checkpoint_required")
    const stepId = (checkpoint.data as { stepId: string }).stepId
    expect(
      await command(bob, "feedback", { runId, target: { kind: "step", stepId }, answer: "approve" })
    ).toMatchObject({ ok: false, error: { _tag: "NotRunOwner" } })
    expect(
      await command(b, "feedback", { runId, target: { kind: "step", stepId: "s99" }, answer: "approve" })
    ).toMatchObject({ ok: false, error: { _tag: "CheckpointNotPending", stepId: "s99" } })
    expect(await command(b, "feedback", { runId, target: { kind: "step", stepId }, answer: "approve" })).toMatchObject({
      ok: true,
      result: { resumed: true }
    })
    // the same checkpoint cannot be answered twice
    expect(await command(a, "feedback", { runId, target: { kind: "step", stepId }, answer: "reject" })).toMatchObject({
      ok: false,
      error: { _tag: "CheckpointNotPending" }
    })
    const done = await eventOn(a, channel, "completion")
    expect(done.data).toMatchObject({ outcome: "succeeded" })
    await eventOn(b, channel, "completion")
    for (const client of [a, b]) {
      const events = client.events(channel)
      expectWholeLog(events)
      expect(assembled(events)).toBe(answerText("cheap flights"))
      expect(events.filter((e) => e.event === "step_update").length).toBe(10)
      expect(events.filter((e) => e.event === "checkpoint_resolved")).toHaveLength(1)
      expect(events.filter((e) => e.event === "completion")).toHaveLength(1)
      expect(events.at(-1)?.event).toBe("completion")
    }

    // 2. cancel from the other gateway while the run waits at its checkpoint
    const second = await command(a, "start", { query: "a long job", mode: "auto" })
    const run2 = second.result as { runId: string; channel: string }
    b.send({ type: "subscribe", channel: run2.channel, fromStart: true })
    await eventOn(b, run2.channel, "checkpoint_required")
    expect(await command(bob, "cancel", { runId: run2.runId })).toMatchObject({
      ok: false,
      error: { _tag: "NotRunOwner" }
    })
    expect(await command(b, "cancel", { runId: run2.runId, reason: "changed my mind" })).toMatchObject({
      ok: true,
      result: { outcome: "cancelled" }
    })
    const ended = await eventOn(b, run2.channel, "completion")
    expect(ended.data).toMatchObject({ outcome: "cancelled", reason: "changed my mind" })
    expect(await command(a, "cancel", { runId: run2.runId })).toMatchObject({
      ok: true,
      result: { outcome: "already_finished" }
    })
    // nothing follows the cancellation
    await new Promise((resolve) => setTimeout(resolve, 300))
    const events2 = b.events(run2.channel)
    expectWholeLog(events2)
    expect(events2.filter((e) => e.event === "completion")).toHaveLength(1)
    expect(events2.at(-1)?.event).toBe("completion")

    if (state) {
      expect(await state(runId)).toMatchObject({ state: "completed" })
      expect(await state(run2.runId)).toMatchObject({ state: "cancelled", cancelReason: "changed my mind" })
      expect(await state("no-such-run")).toBeUndefined()
    }

    // 3. unknown runs
    expect(await command(b, "cancel", { runId: "no-such-run" })).toMatchObject({
      ok: false,
      error: { _tag: "RunNotFound" }
    })
  } finally {
    for (const c of [a, b, bob]) c.close()
  }
}
