/**
 * The codes an `error` frame can carry. Each code is stable wire vocabulary, documented in docs/protocol.md;
 * the human message beside it may change between releases, the code may not.
 */
import { Schema } from "effect"

export const ErrorCode = Schema.Literals([
  "bad_json",
  "bad_frame",
  "unknown_frame",
  "unknown_command",
  "invalid_payload",
  "not_authenticated",
  "already_authenticated",
  "auth_failed",
  "forbidden",
  "frame_too_large",
  "rate_limited",
  "too_many_subscriptions",
  "not_subscribed",
  "bad_position",
  "duplicate_command_id",
  "unavailable",
  "internal"
]).annotate({ identifier: "ErrorCode" })
export type ErrorCode = typeof ErrorCode.Type
