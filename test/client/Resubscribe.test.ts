/**
 * A resubscribe in the presence of a slow or struggling server: acks of a resumed channel wait for its
 * `subscribed` (the real server refuses an ack for a subscription still replaying), an `unavailable` refusal
 * (the server's broker is down) is asked again until it succeeds, and an error naming the channel that does not
 * answer the subscribe (an ack's `bad_position`) leaves the subscription alone.
 */
import { describe, expect, it } from "vitest"
import type { ClientIssue } from "../../src/client/node.ts"
import { eventually, type Frame } from "./support/fakeServer.ts"
import { harness, sleep } from "./support/harness.ts"
import { step } from "./support/testProtocol.ts"

const h = harness()

describe("Client resubscribe", () => {
  it("holds a resumed channel's ack until the server says the channel is subscribed again", async () => {
    let acksBeforeSubscribed = -1
    const server = await h.server({
      beforeSubscribe: async (conn) => {
        if (conn.id === 1) return undefined
        await sleep(100) // replaying from the broker takes a while
        acksBeforeSubscribed = conn.sent("ack").length
        return undefined
      }
    })
    const client = h.client(server, { ack: { maxEvents: 1_000, maxDelayMs: 60_000 } })
    let seen = 0
    client.on("step_update", () => {
      seen++
    })
    await client.subscribe("run:1").ready()
    for (let i = 1; i <= 3; i++) server.publish("run:1", "step_update", step(i))
    await eventually(() => expect(seen).toBe(3))
    expect(server.latest()!.sent("ack")).toHaveLength(0)

    server.latest()!.kill()
    const second = await server.welcomed(1)
    await eventually(() => expect(second.sent("ack")).toHaveLength(1))
    expect(acksBeforeSubscribed).toBe(0)
    expect(second.sent("ack")[0]).toMatchObject({ channel: "run:1", offset: 3 })
  })

  it("asks again after `unavailable` until the subscription is live", async () => {
    let refusals = 0
    const server = await h.server({
      beforeSubscribe: (_conn, channel): Frame | undefined =>
        refusals++ < 2 ? { type: "error", code: "unavailable", message: "broker unreachable", channel } : undefined
    })
    const client = h.client(server)
    const issues: Array<ClientIssue> = []
    client.onError((issue) => void issues.push(issue))
    const info = await client.subscribe("run:1").ready()
    expect(info.channel).toBe("run:1")
    expect(server.latest()!.sent("subscribe")).toHaveLength(3)
    expect(issues.map((i) => (i._tag === "ServerError" ? i.code : i._tag))).toEqual(["unavailable", "unavailable"])
    server.publish("run:1", "step_update", step(1))
    let got = 0
    client.on("step_update", () => {
      got++
    })
    await eventually(() => expect(got).toBe(1))
  })

  it("keeps subscribing when an error names the channel but does not answer the subscribe", async () => {
    const server = await h.server({
      beforeSubscribe: (conn, channel) => {
        conn.send({ type: "error", code: "bad_position", message: "ack beyond what was delivered", channel })
        return undefined
      }
    })
    const client = h.client(server)
    const issues: Array<ClientIssue> = []
    client.onError((issue) => void issues.push(issue))
    await expect(client.subscribe("run:1").ready()).resolves.toMatchObject({ channel: "run:1" })
    expect(issues).toHaveLength(1)
  })
})
