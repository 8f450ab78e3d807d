/**
 * A small two-version protocol for server tests (independent of the built-in agent protocol): v1 `said` has a
 * flat `text`; v2 renames it to `body` and adds `shout` (not in v1). `send` returns the position it published at;
 * `boom` dies (a defect); `fail` fails with a typed error; `slow` sleeps.
 */
import { Schema } from "effect"
import * as Protocol from "../../../src/protocol/Protocol.ts"

export const NotAllowed = Schema.Struct({ _tag: Schema.tag("NotAllowed"), reason: Schema.String })

const v1 = Protocol.version({
  version: 1,
  events: {
    said: Schema.Struct({ from: Schema.String, text: Schema.String }),
    tick: Schema.Struct({ n: Schema.Int })
  },
  commands: {
    send: Protocol.command({
      payload: Schema.Struct({ channel: Schema.String, text: Schema.String }),
      result: Schema.Struct({ offset: Schema.Int }),
      error: NotAllowed
    }),
    fail: Protocol.command({ payload: Schema.Struct({}), result: Schema.Struct({}), error: NotAllowed }),
    boom: Protocol.command({ payload: Schema.Struct({}), result: Schema.Struct({}), error: NotAllowed })
  }
})

const v2 = Protocol.version({
  version: 2,
  events: {
    said: Schema.Struct({ from: Schema.String, body: Schema.String }),
    tick: Schema.Struct({ n: Schema.Int }),
    shout: Schema.Struct({ from: Schema.String, body: Schema.String }),
    frame: Schema.Struct({ n: Schema.Int, image: Schema.optionalKey(Schema.String) })
  },
  latestValue: ["frame"],
  commands: {
    send: Protocol.command({
      payload: Schema.Struct({ channel: Schema.String, body: Schema.String, loud: Schema.Boolean }),
      result: Schema.Struct({ offset: Schema.Int }),
      error: NotAllowed
    }),
    fail: Protocol.command({ payload: Schema.Struct({}), result: Schema.Struct({}), error: NotAllowed }),
    boom: Protocol.command({ payload: Schema.Struct({}), result: Schema.Struct({}), error: NotAllowed }),
    slow: Protocol.command({
      payload: Schema.Struct({ ms: Schema.Int }),
      result: Schema.Struct({ done: Schema.Boolean }),
      error: NotAllowed
    })
  }
})

export const ChatProtocol = Protocol.make("chat", v1).evolve(v2, {
  eventDown: (e) =>
    e.event === "said"
      ? { event: "said", data: { from: e.data.from, text: e.data.body } }
      : e.event === "tick"
        ? e
        : undefined,
  commandUp: (c) =>
    c.name === "send"
      ? { name: "send", payload: { channel: c.payload.channel, body: c.payload.text, loud: false } }
      : c,
  replyDown: (r) =>
    r.name === "slow" ? { name: "fail", ok: false, error: { _tag: "NotAllowed", reason: "v2 only" } } : r
})
