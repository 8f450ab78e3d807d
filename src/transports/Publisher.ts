/**
 * Typed publishing over any transport: validate an event against the protocol's newest version, encode it once,
 * append it to the channel's log. Fan-out then happens through the transport's live feed on every node (the
 * server's Fanout.ts), so a publish from a gateway, from another node or from a worker hosting runs reaches
 * subscribers the same way. Used by the server (handlers, HTTP publish) and by runs (src/runs).
 */
import { Clock, Effect, Result, Schema } from "effect"
import { channelNameProblem } from "../protocol/ChannelName.ts"
import type { Position } from "../protocol/Position.ts"
import type { ProtocolCodec } from "../protocol/ProtocolCodec.ts"
import { type Appended, type AppendOptions, TransportError, type TransportShape } from "./Transport.ts"

/** The event is not valid in the protocol's newest version (unknown name or a bad field at `path`). */
export class InvalidEvent extends Schema.TaggedError<InvalidEvent>()("InvalidEvent", {
  message: Schema.String,
  path: Schema.Array(Schema.Union([Schema.String, Schema.Number]))
}) {}

export type PublishError = InvalidEvent | TransportError

export interface Publisher {
  /** `data` is the event's typed value (as handlers produce it). */
  readonly publish: (
    channel: string,
    event: string,
    data: unknown,
    options?: AppendOptions
  ) => Effect.Effect<Position, PublishError>
  /** `data` is the event's wire form (JSON from an HTTP body): decoded first, so it is validated the same way. */
  readonly publishEncoded: (
    channel: string,
    event: string,
    data: unknown,
    options?: AppendOptions
  ) => Effect.Effect<Position, PublishError>
  /**
   * Like `publish`, but answers with the appended entry, whose `duplicate` says whether an idempotency key matched
   * an earlier append (so nothing new was appended).
   */
  readonly append: (
    channel: string,
    event: string,
    data: unknown,
    options?: AppendOptions
  ) => Effect.Effect<Appended, PublishError>
}

/** `onPublished` is called once per entry actually appended (not for a duplicate answered from its key). */
export const make = (
  transport: TransportShape,
  codec: ProtocolCodec,
  onPublished: () => void = () => {},
  /** Record a `tidings.publish` span per publish (src/server/Tracing.ts). */
  traced = false
): Publisher => {
  const appendJson = (channel: string, event: string, json: string, options: AppendOptions | undefined) =>
    Effect.flatMap(Clock.currentTimeMillis, (time) =>
      transport.append(channel, { event, data: json, version: codec.latest, time }, options)
    ).pipe(
      Effect.map((entry) => {
        if (entry.duplicate !== true) onPublished()
        return entry
      })
    )
  const toPosition = (entry: Appended): Position => ({ epoch: entry.epoch, offset: entry.offset })

  const checkChannel = (channel: string): Effect.Effect<void, InvalidEvent> => {
    const problem = channelNameProblem(channel)
    return problem ? Effect.fail(new InvalidEvent({ message: problem, path: ["channel"] })) : Effect.void
  }

  const appendUntraced: Publisher["append"] = (channel, event, data, options) =>
    Effect.flatMap(checkChannel(channel), (): Effect.Effect<Appended, PublishError> => {
      const encoded = codec.encodeEvent(event, data)
      return Result.isFailure(encoded)
        ? Effect.fail(new InvalidEvent({ message: encoded.failure.message, path: [...encoded.failure.path] }))
        : appendJson(channel, event, encoded.success, options)
    })
  const append: Publisher["append"] = traced
    ? (channel, event, data, options) =>
        appendUntraced(channel, event, data, options).pipe(
          Effect.tap((entry) => Effect.annotateCurrentSpan({ "tidings.offset": entry.offset })),
          Effect.withSpan("tidings.publish", {
            kind: "producer",
            attributes: { "tidings.channel": channel, "tidings.event": event }
          })
        )
    : appendUntraced

  const publish: Publisher["publish"] = (channel, event, data, options) =>
    Effect.map(append(channel, event, data, options), toPosition)

  const publishEncoded: Publisher["publishEncoded"] = (channel, event, data, options) =>
    Effect.flatMap(checkChannel(channel), (): Effect.Effect<Position, PublishError> => {
      const decoded = codec.decodeEvent(event, data)
      if (Result.isFailure(decoded)) {
        return Effect.fail(new InvalidEvent({ message: decoded.failure.message, path: [...decoded.failure.path] }))
      }
      return publish(channel, event, decoded.success, options)
    })

  return { publish, publishEncoded, append }
}

export { TransportError }
