/**
 * Server-Sent Events across nodes, on Redis and on NATS: two in-process nodes share a private broker; events
 * published on node A are read as SSE on node B from the start and live; the reader goes away, A publishes more,
 * and B's stream resumed with `Last-Event-ID` gets exactly those, in order, then live ones from either node.
 */
import { Effect } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { type Message, openStream } from "../server/support/sseClient.ts"
import { sign } from "../server/support/testServer.ts"
import { until } from "../support/until.ts"
import { type Broker, brokerBinary, brokerKinds, startBroker } from "./support/brokers.ts"
import { inProcessNode } from "./support/inProcessNode.ts"

const bodies = (messages: ReadonlyArray<Message>) =>
  messages.filter((m) => m.event === "said").map((m) => (m.data as { body: string }).body)

for (const kind of brokerKinds) {
  const binary = brokerBinary(kind, `SSE across nodes (${kind})`)
  if (binary === undefined) {
    describe.skip(`SSE across nodes on ${kind} (${kind} not installed)`, () => {
      it("skipped", () => {})
    })
    continue
  }

  describe(`SSE across nodes on ${kind}`, () => {
    let broker: Broker | undefined
    const nodes: Array<Awaited<ReturnType<typeof inProcessNode>>> = []

    afterAll(async () => {
      for (const n of nodes) await n.close()
      await broker?.close()
    })

    it("reads on one node what another published, and resumes there exactly", async () => {
      broker = await startBroker(kind, binary)
      const env = broker.env("sse")
      const [a, b] = [await inProcessNode(env), await inProcessNode(env)]
      nodes.push(a, b)
      const channel = `room:${Math.random().toString(36).slice(2, 10)}`
      const auth = { authorization: `Bearer ${await sign({ sub: "ann", channels: ["room:*"] })}` }
      const path = `/v1/channels/${encodeURIComponent(channel)}/events`
      const say = (on: typeof a, body: string) =>
        Effect.runPromise(on.server.publishUnknown(channel, "said", { from: "ops", body }))

      for (const n of [1, 2, 3]) await say(a, `m${n}`)
      const first = await Effect.runPromise(openStream(b.server.port, `${path}?fromStart=1`, auth))
      expect(first.status).toBe(200)
      expect(await until(() => bodies(first.messages).length === 3, 5000)).toBe(true)
      await say(a, "m4")
      expect(await until(() => bodies(first.messages).length === 4, 5000)).toBe(true)
      const lastId = first.messages.at(-1)!.id!
      first.close()

      for (const n of [5, 6]) await say(a, `m${n}`)
      const resumed = await Effect.runPromise(openStream(b.server.port, path, { ...auth, "last-event-id": lastId }))
      expect(await until(() => bodies(resumed.messages).length === 2, 5000)).toBe(true)
      await say(b, "m7")
      await say(a, "m8")
      expect(await until(() => bodies(resumed.messages).length === 4, 5000)).toBe(true)
      expect(bodies(first.messages)).toEqual(["m1", "m2", "m3", "m4"])
      expect(bodies(resumed.messages)).toEqual(["m5", "m6", "m7", "m8"])
      expect(resumed.messages.map((m) => Number(m.id!.split(":").at(-1)))).toEqual([5, 6, 7, 8])
      resumed.close()
    }, 60_000)
  })
}
