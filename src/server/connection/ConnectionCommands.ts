/**
 * A connection's commands, its bookkeeping made at its first command (most connections never send one): the
 * command rate limit and the refusals in a row it has earned, the commands still running by id, and the handling of
 * one command frame — checked, decoded for the connection's version, run by the application's handler in a fiber
 * (a span of its connection's when tracing), its reply encoded back; `unavailable` and defects answered as such.
 */
import { Effect, type Fiber, Result, type Tracer } from "effect"
import { CloseCodes } from "../../protocol/CloseCodes.ts"
import type { CommandUnavailable } from "../../protocol/CommandUnavailable.ts"
import type { ErrorCode } from "../../protocol/ErrorCode.ts"
import type { ServerFrame } from "../../protocol/Frames.ts"
import type { Codec } from "../../protocol/Negotiation.ts"
import type { ErasedReply, ProtocolCodec } from "../../protocol/ProtocolCodec.ts"
import type { Limits } from "../Options.ts"
import type { Stats } from "../Stats.ts"
import type { Spans } from "../Tracing.ts"
import { TokenBucket } from "./TokenBucket.ts"

/** The connection a command arrives on. */
export interface CommandHost {
  readonly id: string
  readonly version: number
  /** The wire codec the connection negotiated: a reply's Bytes fields are raw for MessagePack. */
  readonly wire: Codec
  readonly identity: { readonly user: string | null } | undefined
  /** The connection's span, when tracing: its commands' parent. */
  readonly span: Tracer.Span | undefined
  send(frame: ServerFrame): void
  sendError(
    code: ErrorCode,
    message: string,
    extra?: { path?: ReadonlyArray<string | number>; id?: string; retryAfterMs?: number }
  ): void
  close(code: number, reason: string): void
}

/** What running a command needs from the server; `runCommand` calls the application's handler. */
export interface CommandEnv<H> {
  readonly codec: ProtocolCodec
  readonly stats: Stats
  readonly limits: Limits
  readonly now: () => number
  readonly fork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
  readonly spans: Spans | undefined
  readonly runCommand: (
    command: { readonly name: string; readonly payload: unknown },
    connection: H
  ) => Effect.Effect<ErasedReply, CommandUnavailable>
}

export class ConnectionCommands {
  readonly rate: TokenBucket
  refusalsInARow = 0
  /** Commands in flight by id (created at the first one that does not finish at once). */
  private running: Map<string, Fiber.Fiber<void, never>> | undefined

  constructor(perSecond: number, burst: number, now: number) {
    this.rate = new TokenBucket(perSecond, burst, now)
  }

  isRunning(id: string): boolean {
    return this.running?.has(id) ?? false
  }

  track(id: string, fiber: Fiber.Fiber<void, never>): void {
    ;(this.running ??= new Map()).set(id, fiber)
  }

  finished(id: string): void {
    this.running?.delete(id)
  }

  /** The fibers still running; forgets them. */
  takeRunning(): Array<Fiber.Fiber<void, never>> {
    const fibers = this.running ? [...this.running.values()] : []
    this.running = undefined
    return fibers
  }

  /** One command frame from `host`: refused (rate, duplicate id, bad payload) or run, its reply sent when done. */
  handle<H extends CommandHost>(
    host: H,
    env: CommandEnv<H>,
    frame: { readonly id: string; readonly name: string; readonly payload: unknown }
  ): void {
    const { id, name, payload } = frame
    const wait = this.rate.take(env.now())
    if (wait > 0) {
      env.stats.rateLimited++
      host.sendError("rate_limited", `command rate limit of ${env.limits.commandsPerSecond}/s exceeded`, {
        id,
        retryAfterMs: wait
      })
      if (++this.refusalsInARow >= env.limits.maxRateLimitRefusals) {
        host.close(CloseCodes.rateLimited, "sustained command flood")
      }
      return
    }
    this.refusalsInARow = 0
    if (this.isRunning(id)) {
      host.sendError("duplicate_command_id", `command id ${id} is still in flight`, { id, path: ["id"] })
      return
    }
    const decoded = env.codec.decodeCommand(name, payload, host.version)
    if (Result.isFailure(decoded)) {
      host.sendError(
        decoded.failure.code === "unknown_command" ? "unknown_command" : "invalid_payload",
        decoded.failure.message,
        { id, path: decoded.failure.path }
      )
      return
    }
    env.stats.commands++
    const run = env.runCommand(decoded.success, host).pipe(
      Effect.flatMap((reply) =>
        Effect.suspend(() => {
          const encoded = env.codec.encodeReply(reply, host.version, name, host.wire)
          if (Result.isFailure(encoded)) {
            host.sendError("internal", "the server produced an invalid reply", { id })
            return Effect.logError(`command ${name} produced an invalid reply: ${encoded.failure.message}`)
          }
          host.send(
            encoded.success.ok
              ? { type: "reply", id, ok: true, result: encoded.success.result }
              : { type: "reply", id, ok: false, error: encoded.success.error }
          )
          return Effect.void
        })
      ),
      Effect.catchTag("CommandUnavailable", (unavailable) =>
        Effect.sync(() =>
          host.sendError("unavailable", unavailable.message, { id, retryAfterMs: unavailable.retryAfterMs })
        )
      ),
      Effect.catchCause((cause) =>
        Effect.sync(() => host.sendError("internal", `command ${name} failed inside the server`, { id })).pipe(
          Effect.andThen(Effect.logError(`command ${name} (${id}) defect`, cause))
        )
      ),
      Effect.ensuring(Effect.sync(() => this.finished(id))),
      Effect.annotateLogs({ connection: host.id, user: host.identity?.user ?? "anonymous", command: name })
    )
    const fiber = env.fork(
      env.spans
        ? Effect.withSpan(run, `tidings.command ${name}`, {
            kind: "server",
            ...(host.span ? { parent: host.span } : {}),
            attributes: { "tidings.command": name, "tidings.command.id": id, "tidings.connection": host.id }
          })
        : run
    )
    // a handler that finished synchronously has already run its `ensuring`: keep only fibers still running
    if (fiber.pollUnsafe() === undefined) this.track(id, fiber)
  }
}
