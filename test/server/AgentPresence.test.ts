/**
 * The agent protocol's presence (src/agent/Presence.ts, on by default in `tidings serve`): viewers of a run join
 * its presence, and joins and leaves arrive on the run's channel as `user_activity` events, in v2 and in v1; the
 * query lists who is watching.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { agentPresence } from "../../src/agent/Presence.ts"
import * as SimulatedAgent from "../../src/agent/SimulatedAgent.ts"
import { AgentProtocol } from "../../src/protocol/agent/index.ts"
import * as Server from "../../src/server/Server.ts"
import * as Memory from "../../src/transports/Memory.ts"
import { eventually } from "../support/until.ts"
import { connectRaw, type RawClient } from "./support/rawClient.ts"
import { SECRET, sign } from "./support/testServer.ts"

const serverLayer = Server.layer({
  protocol: AgentProtocol,
  handlers: SimulatedAgent.handlers,
  port: 0,
  auth: { secret: SECRET },
  presence: agentPresence()
}).pipe(Layer.provide(SimulatedAgent.runs({ beatMs: 50, steps: 4 })), Layer.provide(Memory.layer()))

const connect = (url: string, user: string, version: number) =>
  Effect.promise(async () => {
    const client = await connectRaw(url, { protocols: [`tidings.agent.v${version}.json`] })
    client.send({ type: "authenticate", token: await sign({ sub: user, channels: ["run:*"] }) })
    await client.next((f) => f.type === "welcome")
    return client
  })

const activity = (client: RawClient, channel: string) =>
  client
    .events(channel)
    .filter((e) => e.event === "user_activity")
    .map((e) => e.data as { user: string; action: string; target: string })

layer(serverLayer, { excludeTestServices: true })("agent presence", (it) => {
  it.effect("viewers of a run are announced as user_activity joined / left, in v2 and v1", () =>
    Effect.gen(function* () {
      const server = yield* Server.TidingsServer
      const ann = yield* connect(server.url, "ann", 2)
      const bob = yield* connect(server.url, "bob", 1)
      ann.send({ type: "command", id: "s", name: "start", payload: { query: "cheap flights", mode: "research" } })
      const reply = yield* Effect.promise(() => ann.next((f) => f.type === "reply" && f.id === "s"))
      const { channel } = reply.result as { channel: string }
      ann.send({ type: "subscribe", channel, fromStart: true })
      yield* eventually("ann joined", () => activity(ann, channel).length === 1)
      bob.send({ type: "subscribe", channel, fromStart: true })
      yield* eventually("bob joined", () => activity(ann, channel).length === 2)
      expect(activity(ann, channel)).toEqual([
        { user: "ann", action: "joined", target: channel },
        { user: "bob", action: "joined", target: channel }
      ])
      yield* eventually("bob (v1) sees both", () => activity(bob, channel).length === 2)

      ann.send({ type: "presence", id: "p", channel })
      const listed = yield* Effect.promise(() => ann.next((f) => f.type === "presence" && f.id === "p"))
      expect((listed.members as Array<{ user: string }>).map((m) => m.user).sort()).toEqual(["ann", "bob"])

      bob.close()
      yield* eventually("bob left", () => activity(ann, channel).length === 3)
      expect(activity(ann, channel)[2]).toEqual({ user: "bob", action: "left", target: channel })
      ann.close()
    })
  )
})
