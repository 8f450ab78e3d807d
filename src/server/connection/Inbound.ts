/**
 * What a client sends, read and checked before a connection acts on it: a WebSocket message's text (binary and
 * oversized messages refused) and each frame's JSON decoded as a client frame, or the error frame that says what
 * is wrong with it (code, message, the path of the bad field, the command id when one can be read).
 */
import { Result, Schema } from "effect"
import type { WebSocket } from "ws"
import type { ErrorCode } from "../../protocol/ErrorCode.ts"
import { ClientFrame } from "../../protocol/Frames.ts"
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

/** The message's text, or why it is refused. */
export const messageText = (
  data: WebSocket.RawData,
  isBinary: boolean,
  size: number,
  maxFrameBytes: number
): Result.Result<string, Refusal> => {
  if (isBinary)
    return Result.fail({ code: "bad_frame", message: "binary messages are not accepted; send JSON text frames" })
  if (size > maxFrameBytes) {
    return Result.fail({
      code: "frame_too_large",
      message: `message of ${size} bytes exceeds maxFrameBytes ${maxFrameBytes}`
    })
  }
  return Result.succeed(
    Buffer.isBuffer(data)
      ? data.toString("utf8")
      : Array.isArray(data)
        ? Buffer.concat(data).toString("utf8")
        : Buffer.from(data).toString("utf8")
  )
}

/** One frame's JSON as a client frame, or why it is refused. */
export const decodeFrame = (raw: string): Result.Result<ClientFrame, Refusal> => {
  let json: unknown
  try {
    json = JSON.parse(raw)
  } catch {
    return Result.fail({ code: "bad_json", message: "the frame is not valid JSON" })
  }
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
