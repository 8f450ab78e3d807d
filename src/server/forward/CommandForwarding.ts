/**
 * Protocol commands answered by an application's HTTP endpoint instead of a handler in the gateway. Each binding is
 * an ordinary command handler (Handlers.ts), so forwarded commands sit beside local ones in one `Handlers` object:
 *
 *   handlers: { ...Forward.handlers(Shop, { commands: { order: "http://app/cmd/order" }, secret }), ping: local }
 *
 * The handler POSTs `{protocol, version, command, payload, user, session, connection}` (payload in the newest
 * version's encoded form), signed (Signature.ts), and aborts it after `timeoutMs` or when the caller goes away.
 * The endpoint answers 2xx `{"ok": true, "result"}` or `{"ok": false, "error"}`, decoded with the command's result
 * or error schema. No answer in time, a refused connection, a 5xx or a 429 fail with CommandUnavailable (the
 * client gets `unavailable` and a retry delay); a 4xx, a redirect, a body that is not JSON or not the command's
 * result or error is a defect (the client gets `internal`; the log says what the endpoint did). Never retried here:
 * the endpoint may have done the work before a timeout. The wire contract is in docs/bridges.md.
 */
import { Clock, Data, Effect, Result } from "effect"
import { CommandUnavailable } from "../../protocol/CommandUnavailable.ts"
import type { AnyProtocol, CommandName, LatestOf } from "../../protocol/Protocol.ts"
import { ProtocolCodec } from "../../protocol/ProtocolCodec.ts"
import type { CommandContext, Handler } from "../Handlers.ts"
import * as Signature from "./Signature.ts"
import * as WorkerAnswer from "./WorkerAnswer.ts"

export interface ForwardOptions {
  /** The HMAC-SHA256 key endpoints verify requests with (Signature.verify). */
  readonly secret: string
  /** How long the endpoint has to answer, body included (default 10 000 ms). */
  readonly timeoutMs?: number
  /** The retry delay an `unavailable` carries when the endpoint names none (`Retry-After`); default 1 000 ms. */
  readonly retryAfterMs?: number
  /** Largest answer read (default 1 MiB); a larger one is a defect. */
  readonly maxResponseBytes?: number
  /** Headers added to every request (an API key for a proxy in front of the endpoint, say). */
  readonly headers?: Readonly<Record<string, string>>
}

/** Commands to one endpoint each, or several commands to one endpoint (it reads `command` from the body). */
export type ForwardTargets<P extends AnyProtocol> =
  | { readonly commands: { readonly [K in CommandName<LatestOf<P>>]?: string } }
  | { readonly url: string; readonly commands: ReadonlyArray<CommandName<LatestOf<P>>> }

export type ForwardedHandlers<P extends AnyProtocol, K extends CommandName<LatestOf<P>>> = {
  readonly [Q in K]: Handler<P, Q, never>
}

/** The endpoint did something the contract does not allow; a defect, which the client gets as `internal`. */
export class ForwardingFailed extends Data.TaggedError("ForwardingFailed")<{
  readonly command: string
  readonly url: string
  readonly message: string
}> {}

/** The request body (JSON) an endpoint receives. */
export interface ForwardedCommand {
  readonly protocol: string
  readonly version: number
  readonly command: string
  /** The payload in the newest version's encoded (wire) form. */
  readonly payload: unknown
  /** The caller's user id (token subject), or null when anonymous. */
  readonly user: string | null
  readonly session: string
  readonly connection: string
}

/** What one POST came to, before the body is read as an answer. */
type Exchange =
  | { readonly kind: "answered"; readonly status: number; readonly retryAfter: string | null; readonly body: string }
  | { readonly kind: "timeout" }
  | { readonly kind: "too_large" }
  /** `code`: the system's error code (ECONNREFUSED...), safe to show; `detail` may name the address. */
  | { readonly kind: "unreachable"; readonly code: string; readonly detail: string }

const readLimited = async (response: Response, limit: number): Promise<string | undefined> => {
  const declared = Number(response.headers.get("content-length") ?? "0")
  if (declared > limit) {
    await response.body?.cancel()
    return undefined
  }
  if (!response.body) return ""
  const reader = response.body.getReader()
  const chunks: Array<Uint8Array> = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel()
      return undefined
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString("utf8")
}

/** One POST, never rejecting except when interrupted (the fiber is gone by then). */
const post = async (
  url: string,
  init: { readonly headers: Record<string, string>; readonly body: string },
  limits: { readonly timeoutMs: number; readonly maxResponseBytes: number },
  interrupted: AbortSignal
): Promise<Exchange> => {
  const timeout = AbortSignal.timeout(limits.timeoutMs)
  // either ends the request (by hand: AbortSignal.any is missing before Node 20.3)
  const either = new AbortController()
  const abort = () => either.abort()
  timeout.addEventListener("abort", abort, { once: true })
  interrupted.addEventListener("abort", abort, { once: true })
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: init.headers,
      body: init.body,
      // a redirect is an answer of its own: following it would re-send the signed body to another address
      redirect: "manual",
      signal: either.signal
    })
    const body = await readLimited(response, limits.maxResponseBytes)
    if (body === undefined) return { kind: "too_large" }
    return { kind: "answered", status: response.status, retryAfter: response.headers.get("retry-after"), body }
  } catch (error) {
    if (timeout.aborted) return { kind: "timeout" }
    if (interrupted.aborted) throw error
    const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause
    const code = typeof cause?.code === "string" ? cause.code : "network error"
    return { kind: "unreachable", code, detail: String(cause?.message ?? error) }
  } finally {
    timeout.removeEventListener("abort", abort)
    interrupted.removeEventListener("abort", abort)
  }
}

/** `Retry-After` in whole seconds, as ms; an HTTP date or nonsense is ignored. */
const retryAfterOf = (header: string | null): number | undefined =>
  header !== null && /^\d{1,6}$/.test(header.trim()) ? Number(header.trim()) * 1000 : undefined

type Erased = (payload: unknown, context: CommandContext<AnyProtocol>) => Effect.Effect<unknown, unknown>

const forwarder = (codec: ProtocolCodec, command: string, url: string, options: ForwardOptions): Erased => {
  if (!codec.commandNames().includes(command)) {
    throw new Error(`Forward: ${codec.name} v${codec.latest} has no command "${command}"`)
  }
  const parsed = new URL(url)
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new Error(`Forward: the endpoint of ${command} must be an http(s) URL, got ${url}`)
  }
  if (options.secret.length === 0) throw new Error("Forward: the signing secret is empty")
  const limits = { timeoutMs: options.timeoutMs ?? 10_000, maxResponseBytes: options.maxResponseBytes ?? 1 << 20 }
  const defaultRetryMs = options.retryAfterMs ?? 1_000
  const where = `${command} → ${parsed.origin}${parsed.pathname}`

  const unavailable = (why: string, retryAfterMs = defaultRetryMs, detail = "") =>
    Effect.logWarning(`forwarded command ${where}: ${why}${detail}`).pipe(
      // the client's message names the command, never the endpoint's address
      Effect.andThen(
        Effect.fail(new CommandUnavailable({ message: `command ${command} is unavailable: ${why}`, retryAfterMs }))
      )
    )
  const defect = (why: string) => Effect.die(new ForwardingFailed({ command, url: where, message: why }))

  return (payload, context) =>
    Effect.gen(function* () {
      const encoded = codec.encodeCommand(command, payload, codec.latest)
      if (Result.isFailure(encoded)) return yield* defect(`payload does not encode: ${encoded.failure.message}`)
      const request: ForwardedCommand = {
        protocol: codec.name,
        version: codec.latest,
        command,
        payload: encoded.success,
        user: context.user,
        session: context.session,
        connection: context.connection
      }
      const body = JSON.stringify(request)
      const now = yield* Clock.currentTimeMillis
      const headers = {
        ...options.headers,
        "content-type": "application/json",
        "user-agent": "tidings",
        ...Signature.headers(options.secret, body, now)
      }
      const exchange = yield* Effect.promise((signal) => post(url, { headers, body }, limits, signal))
      switch (exchange.kind) {
        case "timeout":
          return yield* unavailable(`no answer within ${limits.timeoutMs} ms`)
        case "unreachable":
          return yield* unavailable(`endpoint unreachable (${exchange.code})`, defaultRetryMs, `: ${exchange.detail}`)
        case "too_large":
          return yield* defect(`answer larger than ${limits.maxResponseBytes} bytes`)
      }
      const { status } = exchange
      if (status >= 500 || status === 429) {
        return yield* unavailable(`endpoint answered ${status}`, retryAfterOf(exchange.retryAfter))
      }
      if (status < 200 || status > 299) return yield* defect(`endpoint answered ${status}`)
      const answer = WorkerAnswer.decode(codec, command, exchange.body)
      if (answer.kind === "bad") return yield* defect(answer.reason)
      return answer.kind === "result" ? answer.value : yield* Effect.fail(answer.value)
    })
}

/** One command's handler that forwards it to `url`. */
export const to = <P extends AnyProtocol, K extends CommandName<LatestOf<P>>>(
  protocol: P,
  command: K,
  url: string,
  options: ForwardOptions
): Handler<P, K, never> =>
  forwarder(new ProtocolCodec(protocol), command, url, options) as unknown as Handler<P, K, never>

/**
 * Handlers for several commands: `commands: { start: url, stop: url2 }`, or `url` and `commands: ["start", "stop"]`
 * for one endpoint taking them all. Spread the result into the server's `handlers`.
 */
export function handlers<P extends AnyProtocol, const C extends { readonly [K in CommandName<LatestOf<P>>]?: string }>(
  protocol: P,
  options: ForwardOptions & { readonly commands: C & Record<Exclude<keyof C, CommandName<LatestOf<P>>>, never> }
): ForwardedHandlers<P, keyof C & CommandName<LatestOf<P>>>
export function handlers<P extends AnyProtocol, const K extends CommandName<LatestOf<P>>>(
  protocol: P,
  options: ForwardOptions & { readonly url: string; readonly commands: ReadonlyArray<K> }
): ForwardedHandlers<P, K>
export function handlers<P extends AnyProtocol>(
  protocol: P,
  options: ForwardOptions & ForwardTargets<P>
): Record<string, Erased> {
  const codec = new ProtocolCodec(protocol)
  const targets: Array<readonly [string, string]> =
    "url" in options
      ? options.commands.map((command) => [command, options.url] as const)
      : Object.entries(options.commands as Record<string, string>)
  return Object.fromEntries(targets.map(([command, url]) => [command, forwarder(codec, command, url, options)]))
}
