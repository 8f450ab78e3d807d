/**
 * `POST /v1/channels/:channel/events`: publishing from outside a connection (a backend, a job runner).
 *
 * Body: one event `{"event": "...", "data": {...}}` or a batch (an array of them), in the protocol's newest
 * version, wire form — JSON, or MessagePack with `Content-Type: application/msgpack` (byte fields then as `bin`). Every event is validated before any is appended (a bad batch appends nothing): 400 with
 * the path of the bad field, e.g. `[2, "data", "progress"]`. Guarded by the server API key or a JWT whose
 * `publish` patterns cover the channel. An `Idempotency-Key` header makes a retry safe: within the transport's
 * idempotency window the same key returns the original positions instead of appending again.
 * Responds 200 `{"channel": ..., "positions": [{"epoch", "offset"}, ...]}`; 503 with `retryable: true` when the
 * transport is unreachable.
 */

import { timingSafeEqual } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"
import { Effect, Result } from "effect"
import { channelNameProblem } from "../../protocol/ChannelName.ts"
import * as MessagePack from "../../protocol/MessagePack.ts"
import type { Position } from "../../protocol/Position.ts"
import type { ProtocolCodec } from "../../protocol/ProtocolCodec.ts"
import type { Publisher } from "../../transports/Publisher.ts"
import type { Authenticator } from "../auth/index.ts"

export const PATH = /^\/v1\/channels\/([^/]+)\/events$/

export interface PublishEnv {
  readonly codec: ProtocolCodec
  readonly publisher: Publisher
  readonly auth: Authenticator
  readonly apiKey: string | undefined
  /** Largest accepted body (default 1 MiB). */
  readonly maxBodyBytes: number
}

class HttpProblem {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {}
  ) {}
}

const sameSecret = (a: string, b: string) => {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

const readBody = (req: IncomingMessage, limit: number): Effect.Effect<Buffer, HttpProblem> =>
  Effect.callback<Buffer, HttpProblem>((resume) => {
    const chunks: Array<Buffer> = []
    let size = 0
    req.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        resume(Effect.fail(new HttpProblem(413, { error: "body_too_large", message: `body exceeds ${limit} bytes` })))
        req.destroy()
        return
      }
      chunks.push(chunk)
    })
    req.on("end", () => resume(Effect.succeed(Buffer.concat(chunks))))
    req.on("error", () =>
      resume(Effect.fail(new HttpProblem(400, { error: "bad_request", message: "request aborted" })))
    )
  })

interface Item {
  readonly event: string
  readonly data: unknown
}

/** MessagePack bodies: `application/msgpack` (and the older `application/x-msgpack`, `application/vnd.msgpack`). */
const isMessagePack = (contentType: string | undefined): boolean =>
  contentType !== undefined && /^application\/(?:x-|vnd\.)?msgpack\s*(?:;|$)/i.test(contentType)

/** The body as a value: JSON, or one MessagePack value. */
const parseBody = (body: Buffer, contentType: string | undefined): Result.Result<unknown, HttpProblem> => {
  if (isMessagePack(contentType)) {
    try {
      const values = MessagePack.decodeAll(body)
      if (values.length === 1) return Result.succeed(values[0])
    } catch {
      // reported below
    }
    return Result.fail(new HttpProblem(400, { error: "bad_json", message: "the body is not one MessagePack value" }))
  }
  try {
    return Result.succeed(JSON.parse(body.toString("utf8")))
  } catch {
    return Result.fail(new HttpProblem(400, { error: "bad_json", message: "the body is not valid JSON" }))
  }
}

const parseItems = (json: unknown): Result.Result<{ items: ReadonlyArray<Item>; batch: boolean }, HttpProblem> => {
  const batch = Array.isArray(json)
  const list: ReadonlyArray<unknown> = Array.isArray(json) ? json : [json]
  if (list.length === 0 || list.length > 1000) {
    return Result.fail(new HttpProblem(400, { error: "bad_batch", message: "a batch holds 1 to 1000 events" }))
  }
  const items: Array<Item> = []
  for (const [i, raw] of list.entries()) {
    const at = batch ? [i] : []
    if (typeof raw !== "object" || raw === null || typeof (raw as { event?: unknown }).event !== "string") {
      return Result.fail(
        new HttpProblem(400, {
          error: "invalid_event",
          message: 'each event is an object {"event": name, "data": ...}',
          path: [...at, "event"]
        })
      )
    }
    items.push({ event: (raw as { event: string }).event, data: (raw as { data?: unknown }).data })
  }
  return Result.succeed({ items, batch })
}

export const handle = (env: PublishEnv, req: IncomingMessage, res: ServerResponse, channel: string) => {
  const authorize = Effect.gen(function* () {
    const header = req.headers.authorization
    const token = header?.startsWith("Bearer ") ? header.slice(7).trim() : undefined
    if (!token) {
      return yield* Effect.fail(
        new HttpProblem(401, { error: "missing_token", message: "send Authorization: Bearer <api key or JWT>" })
      )
    }
    if (env.apiKey && sameSecret(token, env.apiKey)) return
    const identity = yield* env.auth
      .verify(token)
      .pipe(Effect.mapError((e) => new HttpProblem(401, { error: e.reason, message: e.message })))
    if (!identity.canPublish(channel)) {
      return yield* Effect.fail(
        new HttpProblem(403, { error: "forbidden", message: `this token may not publish to ${channel}` })
      )
    }
  })

  return Effect.gen(function* () {
    const problem = channelNameProblem(channel)
    if (problem)
      return yield* Effect.fail(new HttpProblem(400, { error: "bad_channel", message: problem, path: ["channel"] }))
    yield* authorize
    const body = parseBody(yield* readBody(req, env.maxBodyBytes), req.headers["content-type"])
    if (Result.isFailure(body)) return yield* Effect.fail(body.failure)
    const parsed = parseItems(body.success)
    if (Result.isFailure(parsed)) return yield* Effect.fail(parsed.failure)
    const { items, batch } = parsed.success
    // validate everything first: a bad batch appends nothing
    const decoded: Array<{ event: string; data: unknown }> = []
    for (const [i, item] of items.entries()) {
      const value = env.codec.decodeEvent(item.event, item.data)
      if (Result.isFailure(value)) {
        const at = batch ? [i] : []
        return yield* Effect.fail(
          new HttpProblem(400, {
            error: value.failure.code === "unknown_event" ? "unknown_event" : "invalid_event",
            message: value.failure.message,
            path: value.failure.code === "unknown_event" ? [...at, "event"] : [...at, ...value.failure.path]
          })
        )
      }
      decoded.push({ event: item.event, data: value.success })
    }
    const key = req.headers["idempotency-key"]
    if (typeof key === "string" && key.length > 200) {
      return yield* Effect.fail(
        new HttpProblem(400, { error: "bad_idempotency_key", message: "Idempotency-Key is at most 200 characters" })
      )
    }
    const idempotencyKey = typeof key === "string" && key.length > 0 ? key : undefined
    const positions: Array<Position> = []
    for (const [i, item] of decoded.entries()) {
      const options = idempotencyKey ? { idempotencyKey: batch ? `${idempotencyKey}#${i}` : idempotencyKey } : {}
      positions.push(
        yield* env.publisher
          .publish(channel, item.event, item.data, options)
          .pipe(
            Effect.mapError((e) =>
              e._tag === "TransportError"
                ? new HttpProblem(
                    503,
                    { error: "unavailable", message: e.message, retryable: true, published: positions.length },
                    { "retry-after": "1" }
                  )
                : new HttpProblem(400, { error: "invalid_event", message: e.message, path: [...e.path] })
            )
          )
      )
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ channel, positions }))
  }).pipe(
    Effect.catch((problem: HttpProblem) =>
      Effect.sync(() => {
        if (!res.headersSent) {
          res
            .writeHead(problem.status, { "content-type": "application/json", ...problem.headers })
            .end(JSON.stringify(problem.body))
        }
      })
    )
  )
}
