/**
 * A one-version protocol with byte fields, for codec tests: `shot` carries an image as Bytes; `upload` sends bytes
 * up, publishes them as a `shot` and echoes them back in its result.
 */
import { Effect, Layer, Schema } from "effect"
import { Bytes } from "../../../src/protocol/Bytes.ts"
import * as Protocol from "../../../src/protocol/Protocol.ts"
import type { Handlers } from "../../../src/server/Handlers.ts"
import * as Server from "../../../src/server/Server.ts"
import * as Memory from "../../../src/transports/Memory.ts"
import { SECRET } from "./testServer.ts"

const NotAllowed = Schema.Struct({ _tag: Schema.tag("NotAllowed"), reason: Schema.String })

export const FilesProtocol = Protocol.make(
  "files",
  Protocol.version({
    version: 1,
    events: {
      shot: Schema.Struct({ step: Schema.Int, image: Bytes }),
      note: Schema.Struct({ text: Schema.String })
    },
    commands: {
      upload: Protocol.command({
        payload: Schema.Struct({ channel: Schema.String, content: Bytes }),
        result: Schema.Struct({ offset: Schema.Int, size: Schema.Int, echo: Bytes }),
        error: NotAllowed
      })
    }
  })
)

const handlers: Handlers<typeof FilesProtocol> = {
  upload: (payload, ctx) =>
    ctx.publish(payload.channel, "shot", { step: payload.content.length, image: payload.content }).pipe(
      Effect.map((p) => ({ offset: p.offset, size: payload.content.length, echo: payload.content })),
      Effect.orDie
    )
}

export const FILES_API_KEY = "files-api-key"

/** The server for FilesProtocol on port 0, with its memory transport in the output (to read the stored log). */
export const filesServerLayer = () =>
  Server.layer({ protocol: FilesProtocol, handlers, port: 0, auth: { secret: SECRET }, apiKey: FILES_API_KEY }).pipe(
    Layer.provideMerge(Memory.layer())
  )
