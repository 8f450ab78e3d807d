/**
 * What a client sends, read and checked before a connection acts on it: a WebSocket message's text (JSON
 * connections) or bytes (MessagePack connections) — a message of the other kind, or an oversized one, is refused
 * — and each frame decoded as a client frame, or the error frame that says what is wrong with it (code, message,
 * the path of the bad field, the command id when one can be read). Both codecs share that second step, so a
 * frame that parses is checked the same way whatever its codec, and one that does not parse is `bad_json`.
 */
import { Result, Schema } from "effect"
import type { WebSocket } from "ws"
import type { ErrorCode } from "../../protocol/ErrorCode.ts"
import { ClientFrame } from "../../protocol/Frames.ts"
import * as MessagePack from "../../protocol/MessagePack.ts"
import { fromSchemaError } from "../../protocol/SchemaProblem.ts"

/** Why a message or a frame is refused: the error frame to answer with. */
export interface Refusal {
  readonly code: ErrorCode
  readonly message: string
  readonly path?: ReadonlyArray<string | number>
  readonly id?: string
}

const decodeClientFrame = Schema.decodeUnknownResult(ClientFrame)
const clientFrameTypes = new Set(["authenticate", "subscribe", "unsubscribe", "ack", "command", "ping", "pong"])

export const messageSize = (data: WebSocket.RawData): number =>
  Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength

const tooLarge = (size: number, maxFrameBytes: number): Refusal => ({
  code: "frame_too_large",
  message: `message of ${size} bytes exceeds maxFrameBytes ${maxFrameBytes}`
})

const bytesOf = (data: WebSocket.RawData): Buffer =>
  Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)

/** The message's text (a JSON connection), or why it is refused. */
export const messageText = (
  data: WebSocket.RawData,
  isBinary: boolean,
  size: number,
  maxFrameBytes: number
): Result.Result<string, Refusal> => {
  if (isBinary) {
    return Result.fail({
      code: "bad_frame",
      message: "binary messages are not accepted on a JSON connection; send JSON text frames (or negotiate msgpack)"
    })
  }
  if (size > maxFrameBytes) return Result.fail(tooLarge(size, maxFrameBytes))
  return Result.succeed(bytesOf(data).toString("utf8"))
}

/** The frames of a binary message (a MessagePack connection), not yet checked, or why the message is refused. */
export const messageValues = (
  data: WebSocket.RawData,
  isBinary: boolean,
  size: number,
  maxFrameBytes: number
): Result.Result<ReadonlyArray<unknown>, Refusal> => {
  if (!isBinary) {
    return Result.fail({
      code: "bad_frame",
      message: "text messages are not accepted on a MessagePack connection; send binary MessagePack frames"
    })
  }
  if (size > maxFrameBytes) return Result.fail(tooLarge(size, maxFrameBytes))
  try {
    return Result.succeed(MessagePack.decodeAll(bytesOf(data)))
  } catch {
    return Result.fail({ code: "bad_json", message: "the message is not valid MessagePack" })
  }
}

/** One frame's JSON as a client frame, or why it is refused. */
export const decodeFrame = (raw: string): Result.Result<ClientFrame, Refusal> => {
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch {
    return Result.fail({ code: "bad_json", message: "the frame is not valid JSON" })
  }
  return decodeValue(json)
}

/** A parsed frame (from JSON or MessagePack) as a client frame, or why it is refused. */
export const decodeValue = (json: unknown): Result.Result<ClientFrame, Refusal> => {
  const decoded = decodeClientFrame(json)
  if (Result.isSuccess(decoded)) return Result.succeed(decoded.success)
  const type = typeof json === "object" && json !== null ? (json as { type?: unknown }).type : undefined
  const id = typeof json === "object" && json !== null ? (json as { id?: unknown }).id : undefined
  const idExtra = typeof id === "string" && id.length <= 64 ? { id } : {}
  if (typeof type !== "string" || !clientFrameTypes.has(type)) {
    return Result.fail({
      code: "unknown_frame",
      message: `unknown frame type ${JSON.stringify(type)?.slice(0, 64) ?? "(none)"}`,
      path: ["type"],
      ...idExtra
    })
  }
  const problem = fromSchemaError(decoded.failure)
  return Result.fail({
    code: "bad_frame",
    message: `bad ${type} frame: ${problem.message}`,
    path: problem.path,
    ...idExtra
  })
}
