/**
 * The client's errors, as tagged Schema errors. Each says what happened and what the caller can do.
 *
 * Three families: what a command can fail with (`CommandFailure`), what ends the client for good
 * (`TerminalError`), and what the client reports without stopping (`ClientIssue`, given to `onError`). The
 * wire vocabulary they carry (error codes, close codes) is owned by src/protocol.
 */
import { Schema } from "effect"
import { ErrorCode } from "../protocol/ErrorCode.ts"

const Path = Schema.Array(Schema.Union([Schema.String, Schema.Number]))

// ---- commands ----------------------------------------------------------------------------------------------

/**
 * The server ran the command and its handler failed with the command's typed error (`error`, decoded with the
 * command's error schema for the negotiated version). Handle it like any domain error.
 */
export class CommandFailed<out E = unknown> extends Schema.TaggedError<CommandFailed<unknown>>()("CommandFailed", {
  command: Schema.String,
  error: Schema.Unknown
}) {
  declare readonly error: E
  override get message(): string {
    return `command "${this.command}" failed: ${describe(this.error)}`
  }
}

/**
 * The command never ran: the server answered with an `error` frame (unknown command, invalid payload, rate
 * limited, unavailable, not authenticated...), or the client refused to send a payload that does not match the
 * command's schema (code `invalid_payload`, with the path of the bad field). Fix the call; retry only on
 * `rate_limited` and `unavailable` (something the command needs is down, or no worker is up to take a run), after
 * `retryAfterMs`.
 */
export class CommandRejected extends Schema.TaggedError<CommandRejected>()("CommandRejected", {
  command: Schema.String,
  code: ErrorCode,
  message: Schema.String,
  path: Path,
  retryAfterMs: Schema.optionalKey(Schema.Number)
}) {}

/** No reply arrived within the command's timeout. The command may still have run on the server. */
export class CommandTimeout extends Schema.TaggedError<CommandTimeout>()("CommandTimeout", {
  command: Schema.String,
  timeoutMs: Schema.Number
}) {
  override get message(): string {
    return `command "${this.command}" got no reply within ${this.timeoutMs} ms (it may still have run)`
  }
}

/**
 * The connection was lost (or the client closed) before the reply arrived. The client never re-sends a
 * command on its own: the command may or may not have run; retry it only if it is safe to run twice.
 */
export class Disconnected extends Schema.TaggedError<Disconnected>()("Disconnected", {
  reason: Schema.String
}) {
  override get message(): string {
    return `disconnected: ${this.reason}`
  }
}

// ---- terminal ----------------------------------------------------------------------------------------------

/**
 * The server does not speak the protocol version this client was built for (HTTP 400 on upgrade, or a welcome
 * naming another version). The client stops: upgrade the app or pick one of `supported`.
 */
export class ProtocolMismatch extends Schema.TaggedError<ProtocolMismatch>()("ProtocolMismatch", {
  protocol: Schema.String,
  version: Schema.Number,
  supported: Schema.Array(Schema.Number),
  message: Schema.String
}) {}

/** The server refused the credentials (close 4401), even after one retry with a fresh token. Sign in again. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  message: Schema.String
}) {}

/** Every reconnect attempt allowed by `backoff.maxAttempts` failed. Make a new client to try again. */
export class ReconnectExhausted extends Schema.TaggedError<ReconnectExhausted>()("ReconnectExhausted", {
  attempts: Schema.Number,
  lastCloseCode: Schema.Number
}) {
  override get message(): string {
    return `gave up after ${this.attempts} reconnect attempts (last close code ${this.lastCloseCode})`
  }
}

// ---- reported, not fatal -----------------------------------------------------------------------------------

/**
 * The server sent something this client cannot read: a frame that is not JSON or not a known frame, an event
 * or reply whose data does not match the negotiated version's schema. The frame is skipped (an event still
 * counts as seen, so it causes no gap). Usually a server/client version skew: report it.
 */
export class ProtocolViolation extends Schema.TaggedError<ProtocolViolation>()("ProtocolViolation", {
  message: Schema.String,
  path: Path
}) {}

/** An `error` frame that answers no command (a refused subscribe, a malformed ack...). */
export class ServerError extends Schema.TaggedError<ServerError>()("ServerError", {
  code: ErrorCode,
  message: Schema.String,
  channel: Schema.optionalKey(Schema.String)
}) {}

/** An application handler threw or rejected. The event still counts as processed (and is acked). */
export class HandlerFailed extends Schema.TaggedError<HandlerFailed>()("HandlerFailed", {
  channel: Schema.String,
  event: Schema.String,
  cause: Schema.Unknown
}) {
  override get message(): string {
    return `handler for "${this.event}" on ${this.channel} failed: ${describe(this.cause)}`
  }
}

/** What `command` can fail with; `E` is the command's typed error. */
export type CommandFailure<E> = CommandFailed<E> | CommandRejected | CommandTimeout | Disconnected | ProtocolViolation

/**
 * What ends a client for good; it is in state "closed" afterwards. Disconnected here means the server closed
 * the connection with a code that asks the client not to come back (1000).
 */
export type TerminalError = ProtocolMismatch | Unauthorized | ReconnectExhausted | Disconnected

/** What a client reports to `onError` and keeps going. */
export type ClientIssue = ProtocolViolation | ServerError | HandlerFailed

const describe = (value: unknown): string => {
  if (value instanceof Error) return value.message
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}
