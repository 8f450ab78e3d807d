/**
 * Acks: cumulative per channel, batched by count or by time, sent only after the app's handlers returned
 * (async handlers included), flushed on close, and remembered by the server per session.
 */
import { describe, expect, it } from "vitest"
import { eventually } from "./support/fakeServer.ts"
import { codecs, deferred, harness, sleep } from "./support/harness.ts"
import { step } from "./support/testProtocol.ts"

const acked = (frames: ReadonlyArray<Record<string, unknown>>) => frames.map((f) => `${f.channel}@${f.offset}`)

describe.each(codecs)("Client acks (%s)", (codec) => {
  const h = harness(codec)

  it("acks cumulatively, one frame per batch of maxEvents", async () => {
    const server = await h.server()
    const client = h.client(server, { ack: { maxEvents: 10, maxDelayMs: 60_000 } })
    let seen = 0
    client.on("step_update", () => {
      seen++
    })
    await client.subscribe("run:1").ready()
    const conn = server.latest()!
    for (let i = 1; i <= 25; i++) server.publish("run:1", "step_update", step(i))
    await eventually(() => expect(seen).toBe(25))
    await eventually(() => expect(acked(conn.sent("ack"))).toEqual(["run:1@10", "run:1@20"]))
    expect(conn.sent("ack")[0]).toEqual({
      type: "ack",
      channel: "run:1",
      epoch: server.position("run:1").epoch,
      offset: 10
    })

    client.close()
    await eventually(() => expect(acked(conn.sent("ack"))).toEqual(["run:1@10", "run:1@20", "run:1@25"]))
    expect(server.acks.get(conn.session!)!.get("run:1")).toEqual(server.position("run:1"))
  })

  it("acks after maxDelayMs when fewer events arrive, one frame per channel", async () => {
    const server = await h.server()
    const client = h.client(server, { ack: { maxEvents: 1_000, maxDelayMs: 80 } })
    await Promise.all([client.subscribe("run:1").ready(), client.subscribe("run:2").ready()])
    const conn = server.latest()!
    for (let i = 1; i <= 3; i++) server.publish("run:1", "step_update", step(i))
    server.publish("run:2", "step_update", step(1))
    await sleep(30)
    expect(conn.sent("ack")).toHaveLength(0)
    await eventually(() => expect(acked(conn.sent("ack")).sort()).toEqual(["run:1@3", "run:2@1"]))
  })

  it("acks an event only after its async handler finished, and holds later events until then", async () => {
    const server = await h.server()
    const client = h.client(server, { ack: { maxEvents: 1, maxDelayMs: 10 } })
    const gate = deferred()
    const log: Array<string> = []
    client.on("step_update", async (data) => {
      log.push(`start ${data.step}`)
      if (data.step === 1) await gate.promise
      log.push(`end ${data.step}`)
    })
    await client.subscribe("run:1").ready()
    const conn = server.latest()!
    server.publish("run:1", "step_update", step(1))
    server.publish("run:1", "step_update", step(2))
    await eventually(() => expect(log).toEqual(["start 1"]))
    await sleep(40)
    expect(log).toEqual(["start 1"])
    expect(conn.sent("ack")).toHaveLength(0)

    gate.resolve()
    await eventually(() => expect(log).toEqual(["start 1", "end 1", "start 2", "end 2"]))
    await eventually(() => expect(acked(conn.sent("ack"))).toEqual(["run:1@1", "run:1@2"]))
  })

  it("acks an event whose handler throws, and reports the failure", async () => {
    const server = await h.server()
    const client = h.client(server, { ack: { maxEvents: 1 } })
    const issues: Array<string> = []
    client.onError((issue) => {
      issues.push(issue._tag)
    })
    client.on("step_update", () => {
      throw new Error("boom")
    })
    await client.subscribe("run:1").ready()
    server.publish("run:1", "step_update", step(1))
    await eventually(() => expect(acked(server.latest()!.sent("ack"))).toEqual(["run:1@1"]))
    expect(issues).toEqual(["HandlerFailed"])
  })

  it("acks an event it cannot decode, so it causes no gap, and reports it", async () => {
    const server = await h.server()
    const client = h.client(server, { ack: { maxEvents: 1 } })
    const issues: Array<unknown> = []
    const steps: Array<number> = []
    client.onError((issue) => {
      issues.push(issue)
    })
    client.on("step_update", (data) => {
      steps.push(data.step)
    })
    await client.subscribe("run:1").ready()
    server.publish("run:1", "step_update", { step: "one" })
    server.publish("run:1", "step_update", step(2))
    await eventually(() => expect(steps).toEqual([2]))
    await eventually(() => expect(acked(server.latest()!.sent("ack"))).toEqual(["run:1@1", "run:1@2"]))
    expect(issues).toMatchObject([{ _tag: "ProtocolViolation", path: ["data", "step"] }])
    expect(server.latest()!.sent("subscribe")).toHaveLength(1)
  })
})
