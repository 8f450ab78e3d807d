/**
 * `tidings/protocol`: define a protocol (catalog DSL), its versions and migrations, byte fields (Bytes), and the
 * wire vocabulary (frames, positions, close codes, error codes, subprotocol names and codecs). Browser-safe.
 */
export { Bytes } from "./Bytes.ts"
export * as CloseCodes from "./CloseCodes.ts"
export { CommandUnavailable } from "./CommandUnavailable.ts"
export { ErrorCode } from "./ErrorCode.ts"
export * as Frames from "./Frames.ts"
export type { Codec } from "./Negotiation.ts"
export * as Negotiation from "./Negotiation.ts"
export { Position } from "./Position.ts"
export type {
  AnyProtocol,
  CommandDef,
  CommandError,
  CommandName,
  CommandOf,
  CommandPayload,
  CommandResult,
  EventData,
  EventName,
  EventOf,
  LatestOf,
  Migration,
  PlainSchema,
  Protocol,
  ProtocolData,
  ReplyOf,
  VersionDef,
  VersionNumber,
  VersionOf
} from "./Protocol.ts"
export { command, make, version } from "./Protocol.ts"
export { ProtocolCodec } from "./ProtocolCodec.ts"
