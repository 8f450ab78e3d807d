/** A v1 and a v2 client on the same channel both receive every event, each in its own version. */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { TidingsServer } from "../../src/server/Server.ts"
import { connect, next, subscribe, unique } from "./support/session.ts"
import { testServerLayer } from "./support/testServer.ts"

layer(testServerLayer(), { excludeTestServices: true })("versions", (it) => {
  it.effect("v1 and v2 clients share a channel; events migrate down, commands up, replies down", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const channel = unique("room")
      const v1 = yield* connect(server.url, undefined, 1)
      const v2 = yield* connect(server.url, undefined, 2)
      expect(v1.ws.protocol).toBe("tidings.chat.v1.json")
      yield* subscribe(v1, channel)
      yield* subscribe(v2, channel)
      // a v1 command (text) runs as v2 (body, loud: false)
      v1.send({ type: "command", id: "a", name: "send", payload: { channel, text: "from v1" } })
      expect(yield* next(v1, (f) => f.type === "reply" && f.id === "a")).toMatchObject({
        ok: true,
        result: { offset: 1 }
      })
      v2.send({ type: "command", id: "b", name: "send", payload: { channel, body: "from v2", loud: false } })
      yield* next(v2, (f) => f.type === "reply" && f.id === "b")
      // shout is v2-only: v1 does not see it
      v2.send({ type: "command", id: "c", name: "send", payload: { channel, body: "LOUD", loud: true } })
      yield* next(v2, (f) => f.type === "reply" && f.id === "c")
      yield* server.publishUnknown(channel, "tick", { n: 4 })
      yield* next(v1, (f) => f.type === "event" && f.offset === 4)
      yield* next(v2, (f) => f.type === "event" && f.offset === 4)
      expect(v1.events(channel).map((e) => [e.offset, e.event, e.data])).toEqual([
        [1, "said", { from: "alice", text: "from v1" }],
        [2, "said", { from: "alice", text: "from v2" }],
        [4, "tick", { n: 4 }]
      ])
      expect(v2.events(channel).map((e) => [e.offset, e.event, e.data])).toEqual([
        [1, "said", { from: "alice", body: "from v1" }],
        [2, "said", { from: "alice", body: "from v2" }],
        [3, "shout", { from: "alice", body: "LOUD" }],
        [4, "tick", { n: 4 }]
      ])
      // a v1 client cannot call a v2-only command
      v1.send({ type: "command", id: "d", name: "slow", payload: { ms: 1 } })
      expect(yield* next(v1, (f) => f.type === "error" && f.id === "d")).toMatchObject({ code: "unknown_command" })
      v1.close()
      v2.close()
    })
  )
})
