/**
 * The framework's own wire frames, both directions, as Effect Schemas.
 *
 * Every frame is one JSON text message with a `type` discriminator. Application data (`data` of an event,
 * `payload` of a command, `result`/`error` of a reply) is `unknown` here: it is validated in a second step
 * against the application's protocol catalog for the negotiated version (see Protocol.ts), so that a frame
 * error and a payload error can be told apart and each gets the path of its bad field.
 */
import { Schema } from "effect"
import { ChannelName } from "./ChannelName.ts"
import { ErrorCode } from "./ErrorCode.ts"
import { Epoch, Offset, Position } from "./Position.ts"

/** A frame: a struct whose `type` field is the given literal. */
const frame = <const Type extends string, const Fields extends Schema.Struct.Fields>(type: Type, fields: Fields) =>
  Schema.Struct({ type: Schema.tag(type), ...fields })

export { ChannelName }

const CommandId = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(64))

// ---- client → server ---------------------------------------------------------------------------------------

export const Authenticate = frame("authenticate", {
  token: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(16_384))),
  session: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(128)))
}).annotate({
  description:
    "First frame of a connection not authenticated before the upgrade (no token: anonymous, when allowed); " +
    "`session` resumes an earlier session's acked positions. Sent again later, it refreshes the token in band."
})

export const Subscribe = frame("subscribe", {
  channel: ChannelName,
  since: Schema.optionalKey(Position),
  fromStart: Schema.optionalKey(Schema.Boolean)
}).annotate({
  description:
    "Subscribe to a channel; with `since`, replay what came after that position first; with `fromStart` " +
    "(and no `since`), replay everything the channel still retains"
})

export const Unsubscribe = frame("unsubscribe", { channel: ChannelName })

export const Ack = frame("ack", { channel: ChannelName, epoch: Epoch, offset: Offset }).annotate({
  description: "Cumulative acknowledgement: everything up to and including this offset was processed"
})

export const Command = frame("command", {
  id: CommandId,
  name: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(128)),
  payload: Schema.Unknown
})

export const Ping = frame("ping", {})
export const Pong = frame("pong", {})

export const PresenceQuery = frame("presence", { id: CommandId, channel: ChannelName }).annotate({
  description:
    "Who is subscribed to a channel that has presence (any node); answered by a `presence` frame with the same id"
})

export const ClientFrame = Schema.Union([Authenticate, Subscribe, Unsubscribe, Ack, Command, Ping, Pong, PresenceQuery])
  .pipe(Schema.toTaggedUnion("type"))
  .annotate({ identifier: "ClientFrame" })
export type ClientFrame = typeof ClientFrame.Type

// ---- server → client ---------------------------------------------------------------------------------------

export const Limits = Schema.Struct({
  maxFrameBytes: Schema.Int,
  maxSubscriptions: Schema.Int,
  commandsPerSecond: Schema.Number
})
export type Limits = typeof Limits.Type

export const Welcome = frame("welcome", {
  session: Schema.String,
  protocol: Schema.String,
  version: Schema.Int,
  user: Schema.NullOr(Schema.String),
  heartbeatMs: Schema.Int,
  limits: Limits
})

export const Subscribed = frame("subscribed", {
  channel: ChannelName,
  position: Position,
  recovered: Schema.Boolean,
  replayed: Schema.Int
}).annotate({ description: "`position` is the channel's top when the subscription went live" })

export const Unsubscribed = frame("unsubscribed", { channel: ChannelName })

export const Event = frame("event", {
  channel: ChannelName,
  epoch: Epoch,
  offset: Offset,
  event: Schema.String,
  data: Schema.Unknown,
  time: Schema.Number
})

export const Alias = frame("alias", {
  alias: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  channel: ChannelName,
  epoch: Epoch
}).annotate({
  description:
    "Compact envelope only: the events of `alias` that follow are of this channel and epoch (sent before a " +
    "subscription's first event and again when the epoch or the alias changes)"
})

/**
 * An event in the compact envelope: `[alias, offset, event, data, time]`, the channel and epoch being those of the
 * latest `alias` frame for that alias. Frames that are arrays are events; every other frame is an object.
 */
export const CompactEvent = Schema.Tuple([
  Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  Offset,
  Schema.String,
  Schema.Unknown,
  Schema.Number
]).annotate({ identifier: "CompactEvent", description: "[alias, offset, event, data, time]" })
export type CompactEvent = typeof CompactEvent.Type

export const ReplyOk = frame("reply", { id: CommandId, ok: Schema.Literal(true), result: Schema.Unknown })
export const ReplyErr = frame("reply", { id: CommandId, ok: Schema.Literal(false), error: Schema.Unknown })
export const Reply = Schema.Union([ReplyOk, ReplyErr])

export const ErrorFrame = frame("error", {
  code: ErrorCode,
  message: Schema.String,
  path: Schema.optionalKey(Schema.Array(Schema.Union([Schema.String, Schema.Number]))),
  id: Schema.optionalKey(Schema.String),
  channel: Schema.optionalKey(Schema.String),
  retryAfterMs: Schema.optionalKey(Schema.Int)
})

export const ResetReason = Schema.Literals(["trimmed", "epoch_changed", "unknown_position"])
export type ResetReason = typeof ResetReason.Type

export const Reset = frame("reset", {
  channel: ChannelName,
  reason: ResetReason,
  position: Position
}).annotate({ description: "The requested position cannot be resumed; `position` is where the live stream continues" })

export const GoAway = frame("goaway", {
  reason: Schema.Literals(["shutdown", "restart"]),
  reconnectAfterMs: Schema.Int
})

export const SessionUpdate = frame("session_update", {
  status: Schema.Literals(["expiring_soon", "refreshed"]),
  expiresInMs: Schema.optionalKey(Schema.Int)
})

export const PresenceMember = Schema.Struct({
  id: Schema.String,
  user: Schema.NullOr(Schema.String),
  session: Schema.String,
  info: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown))
}).annotate({ description: "One subscribed connection: its id, its user (null: anonymous), session, token `info`" })
export type PresenceMember = typeof PresenceMember.Type

export const Presence = frame("presence", {
  id: CommandId,
  channel: ChannelName,
  members: Schema.Array(PresenceMember)
}).annotate({ description: "The answer to a presence query" })

export const ServerFrame = Schema.Union([
  Welcome,
  Subscribed,
  Unsubscribed,
  Event,
  Alias,
  ReplyOk,
  ReplyErr,
  ErrorFrame,
  Reset,
  Ping,
  Pong,
  GoAway,
  SessionUpdate,
  Presence
]).annotate({ identifier: "ServerFrame" })
export type ServerFrame = typeof ServerFrame.Type
export type EventFrame = typeof Event.Type
export type AliasFrame = typeof Alias.Type
export type ErrorFrame = typeof ErrorFrame.Type
