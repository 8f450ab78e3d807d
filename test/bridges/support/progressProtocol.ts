/**
 * A small protocol for the AMQP bridge tests and the bridges benchmark: workers report a request's progress as
 * `{requestId, type: "progress", seq, percent}` (mapped by `request:{requestId}`, the event from `type`, the whole
 * message as data); `cancel` goes out to the workers fire-and-forget, `status` asks them and waits for the answer.
 */
import { Schema } from "effect"
import * as Protocol from "../../../src/protocol/Protocol.ts"

export const NotFound = Schema.Struct({ _tag: Schema.tag("NotFound"), requestId: Schema.String })

export const ProgressProtocol = Protocol.make(
  "progress",
  Protocol.version({
    version: 1,
    events: {
      progress: Schema.Struct({
        requestId: Schema.String,
        type: Schema.Literal("progress"),
        seq: Schema.Int,
        percent: Schema.Number
      })
    },
    commands: {
      cancel: Protocol.command({
        payload: Schema.Struct({ requestId: Schema.String, reason: Schema.optionalKey(Schema.String) }),
        result: Schema.Struct({}),
        error: NotFound
      }),
      status: Protocol.command({
        payload: Schema.Struct({ requestId: Schema.String }),
        result: Schema.Struct({ requestId: Schema.String, state: Schema.String }),
        error: NotFound
      })
    }
  })
)
