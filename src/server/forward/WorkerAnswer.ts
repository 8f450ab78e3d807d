/**
 * A worker's answer to a command sent out of the gateway (over HTTP, CommandForwarding.ts, or AMQP,
 * src/bridges/AmqpCommands.ts): JSON `{"ok": true, "result": …}` or `{"ok": false, "error": …}`, decoded against the
 * command's result or typed error in the protocol's newest version; anything else is a bad answer, with the reason.
 */
import { Result } from "effect"
import type { ProtocolCodec } from "../../protocol/ProtocolCodec.ts"

export type WorkerAnswer =
  | { readonly kind: "result"; readonly value: unknown }
  | { readonly kind: "error"; readonly value: unknown }
  | { readonly kind: "bad"; readonly reason: string }

export const decode = (codec: ProtocolCodec, command: string, text: string): WorkerAnswer => {
  let answer: unknown
  try {
    answer = JSON.parse(text)
  } catch {
    return { kind: "bad", reason: `answer is not JSON: ${JSON.stringify(text.slice(0, 80))}` }
  }
  const shaped = answer as { ok?: unknown; result?: unknown; error?: unknown } | null
  if (typeof shaped !== "object" || shaped === null || typeof shaped.ok !== "boolean") {
    return { kind: "bad", reason: `answer is not {"ok": true, "result"} or {"ok": false, "error"}` }
  }
  const decoded = codec.decodeReply(
    command,
    { ok: shaped.ok, result: shaped.result, error: shaped.error },
    codec.latest
  )
  if (Result.isFailure(decoded)) {
    const at = decoded.failure.path.join(".")
    return { kind: "bad", reason: `answer does not match the command's schema at ${at}: ${decoded.failure.message}` }
  }
  return decoded.success.ok
    ? { kind: "result", value: decoded.success.value }
    : { kind: "error", value: decoded.success.value }
}
