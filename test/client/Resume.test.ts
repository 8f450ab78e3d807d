/**
 * Positions end to end: duplicates are dropped, forward jumps are accepted, resets
 * (announced or implied by a new epoch) reach the app, and a client whose socket dies resumes every channel
 * from where it was, with nothing lost and nothing twice.
 */
import { describe, expect, it } from "vitest"
import type { ResetNotice } from "../../src/client/node.ts"
import { eventually } from "./support/fakeServer.ts"
import { codecs, harness, sleep } from "./support/harness.ts"
import { step } from "./support/testProtocol.ts"

describe.each(codecs)("Client positions (%s)", (codec) => {
  const h = harness(codec)

  it("drops a duplicated offset", async () => {
    const server = await h.server()
    const client = h.client(server)
    const offsets: Array<number> = []
    client.on("step_update", (_, meta) => {
      offsets.push(meta.offset)
    })
    await client.subscribe("run:1").ready()
    const conn = server.latest()!
    server.publish("run:1", "step_update", step(1))
    server.publish("run:1", "step_update", step(2))
    conn.send(server.eventFrame("run:1", 2), server.eventFrame("run:1", 1))
    server.publish("run:1", "step_update", step(3))
    await eventually(() => expect(offsets).toEqual([1, 2, 3]))
    await sleep(30)
    expect(offsets).toEqual([1, 2, 3])
  })

  it("accepts a forward jump (events its version does not see) without resubscribing", async () => {
    const server = await h.server()
    const client = h.client(server)
    const offsets: Array<number> = []
    client.on("step_update", (_, meta) => {
      offsets.push(meta.offset)
    })
    await client.subscribe("run:1").ready()
    const conn = server.latest()!
    server.publish("run:1", "step_update", step(1))
    server.publish("run:1", "step_update", step(2), { skip: conn })
    server.publish("run:1", "step_update", step(3), { skip: conn })
    server.publish("run:1", "step_update", step(4))
    server.publish("run:1", "step_update", step(5))
    await eventually(() => expect(offsets).toEqual([1, 4, 5]))
    expect(conn.sent("subscribe")).toHaveLength(1)
  })

  it("reports a reset and continues from the position the server names", async () => {
    const server = await h.server()
    const client = h.client(server)
    const offsets: Array<number> = []
    const resets: Array<ResetNotice> = []
    const subResets: Array<ResetNotice> = []
    client.on("step_update", (_, meta) => {
      offsets.push(meta.offset)
    })
    client.onReset((r) => {
      resets.push(r)
    })
    const sub = client.subscribe("run:1", { onReset: (r) => void subResets.push(r) })
    await sub.ready()
    for (let i = 1; i <= 3; i++) server.publish("run:1", "step_update", step(i))
    await eventually(() => expect(offsets).toEqual([1, 2, 3]))

    server.latest()!.kill()
    server.publish("run:1", "step_update", step(4))
    server.publish("run:1", "step_update", step(5))
    server.trim("run:1", 4) // 4 is gone: resuming from 3 is impossible
    await server.welcomed(1)
    await eventually(() => expect(resets).toHaveLength(1))
    const epoch = server.position("run:1").epoch
    expect(resets[0]).toEqual({
      _tag: "Reset",
      channel: "run:1",
      reason: "trimmed",
      position: { epoch, offset: 5 },
      previous: { epoch, offset: 3 }
    })
    expect(subResets).toEqual(resets)

    server.publish("run:1", "step_update", step(6))
    await eventually(() => expect(offsets).toEqual([1, 2, 3, 6]))
  })

  it("treats a new epoch without a reset frame as a reset", async () => {
    const server = await h.server()
    const client = h.client(server)
    const log: Array<string> = []
    client.on("step_update", (_, meta) => {
      log.push(`event ${meta.epoch}:${meta.offset}`)
    })
    client.onReset((r) => {
      log.push(
        `reset ${r.reason} ${r.previous?.epoch}:${r.previous?.offset} -> ${r.position.epoch}:${r.position.offset}`
      )
    })
    await client.subscribe("run:1").ready()
    const first = server.position("run:1").epoch
    server.publish("run:1", "step_update", step(1))
    server.publish("run:1", "step_update", step(2))
    server.newEpoch("run:1")
    const second = server.position("run:1").epoch
    server.publish("run:1", "step_update", step(1))
    await eventually(() =>
      expect(log).toEqual([
        `event ${first}:1`,
        `event ${first}:2`,
        `reset epoch_changed ${first}:2 -> ${second}:0`,
        `event ${second}:1`
      ])
    )
  })

  it("reconnects after the socket dies and resumes every channel from its last position", async () => {
    const server = await h.server()
    const client = h.client(server, { backoff: { initialDelayMs: 50, maxDelayMs: 200 } })
    const got = new Map<string, Array<number>>([
      ["run:1", []],
      ["run:2", []]
    ])
    client.on("step_update", (data, meta) => {
      got.get(meta.channel)!.push(data.step)
    })
    await Promise.all([client.subscribe("run:1").ready(), client.subscribe("run:2").ready()])
    // run:3 is subscribed but never receives anything: it resumes from the position `subscribed` named.
    await client.subscribe("run:3").ready()
    const total = 200
    for (let i = 1; i <= total / 2; i++) {
      server.publish("run:1", "step_update", step(i))
      server.publish("run:2", "step_update", step(i))
    }
    await eventually(() => expect(got.get("run:2")).toHaveLength(total / 2))

    const first = server.latest()!
    first.kill()
    const states: Array<string> = []
    client.onState((s) => {
      states.push(s)
    })
    for (let i = total / 2 + 1; i <= total; i++) {
      server.publish("run:1", "step_update", step(i))
      server.publish("run:2", "step_update", step(i))
    }
    const second = await server.welcomed(1)
    const expected = Array.from({ length: total }, (_, i) => i + 1)
    await eventually(() => {
      expect(got.get("run:1")).toEqual(expected)
      expect(got.get("run:2")).toEqual(expected)
    })
    expect(states).toEqual(["reconnecting", "open"])
    expect(second.received[0]).toEqual({ type: "authenticate", session: first.session })
    const since = Object.fromEntries(second.sent("subscribe").map((f) => [f.channel, f.since]))
    expect(since).toEqual({
      "run:1": { epoch: server.position("run:1").epoch, offset: total / 2 },
      "run:2": { epoch: server.position("run:2").epoch, offset: total / 2 },
      "run:3": server.position("run:3")
    })
  })
})
