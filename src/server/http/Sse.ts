/**
 * A channel as Server-Sent Events: `GET /v1/channels/<channel>/events` with `Accept: text/event-stream` (or
 * `?stream=sse`) streams the channel's events, one SSE message each, named by the event, with the id
 * `<epoch>:<offset>` and the event's data (in the protocol version `?v=N`, default the newest) as JSON.
 *
 * A reconnecting EventSource sends `Last-Event-ID`; `?lastEventId=<epoch>:<offset>` does the same by hand, and
 * `?fromStart=1` starts at the oldest retained event. It gets exactly the events after that position, in order,
 * then the live ones; when history no longer covers the position it gets an explicit `reset` message
 * (`{reason, position}`, with the new position as its id), never a silent hole. Same tokens and channel rights as
 * WebSocket (`Authorization: Bearer`, or `?token=` for EventSource, which cannot set headers); anonymous access
 * where the server allows it. A comment every heartbeat keeps proxies from closing an idle stream; a reader
 * whose unsent bytes pass `maxOutboundBytes` is cut off and resumes with its Last-Event-ID.
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { Deferred, Effect, Exit, type Fiber, Result, Scope } from "effect"
import type { Position } from "../../protocol/Position.ts"
import type { ProtocolCodec } from "../../protocol/ProtocolCodec.ts"
import type { Entry, ReadResult, TransportError, TransportShape } from "../../transports/Transport.ts"
import type { Authenticator } from "../auth/index.ts"
import type { Limits, Timing } from "../Options.ts"
import type { Stats } from "../Stats.ts"

const PAGE = 1000

export interface SseEnv {
  readonly transport: TransportShape
  readonly codec: ProtocolCodec
  readonly auth: Authenticator
  readonly limits: Limits
  readonly timing: Timing
  readonly stats: Stats
  readonly run: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
}

/** Whether a GET on the events URL asks for a stream. */
export const wantsStream = (req: IncomingMessage, url: URL): boolean =>
  url.searchParams.get("stream") === "sse" || (req.headers.accept ?? "").includes("text/event-stream")

/** `<epoch>:<offset>` (the SSE id) as a position; undefined when it is not one. */
export const parseId = (id: string): Position | undefined => {
  const at = id.lastIndexOf(":")
  const offset = Number(id.slice(at + 1))
  return at > 0 && Number.isInteger(offset) && offset >= 0 ? { epoch: id.slice(0, at), offset } : undefined
}

const idOf = (position: Position) => `${position.epoch}:${position.offset}`

const json = (res: ServerResponse, status: number, body: unknown): void =>
  void res
    .writeHead(status, { "content-type": "application/json", "cache-control": "no-store" })
    .end(JSON.stringify(body))

/** The open streams of a server, ended at its shutdown. */
export class SseStreams {
  private readonly open = new Set<ServerResponse>()
  /**
   * Each entry's SSE message per version, built once: the transports hand one entry object to every listener of
   * its channel, so the streams of a channel on this node share the translation and the text.
   */
  private readonly messages = new WeakMap<Entry, Map<number, string | null>>()

  constructor(private readonly env: SseEnv) {}

  get size(): number {
    return this.open.size
  }

  /** Ends every stream (the server is shutting down; readers reconnect elsewhere with their Last-Event-ID). */
  closeAll(): void {
    for (const res of this.open) res.end()
    this.open.clear()
  }

  /** `entry` as an SSE message in `version`; null when that version does not see the event. */
  private messageFor(entry: Entry, version: number): string | null {
    let byVersion = this.messages.get(entry)
    if (byVersion === undefined) {
      byVersion = new Map()
      this.messages.set(entry, byVersion)
    }
    let message = byVersion.get(version)
    if (message === undefined) {
      const translated = this.env.codec.translateEvent(entry.event, entry.data, entry.version, version)
      message =
        Result.isFailure(translated) || translated.success === undefined
          ? null
          : `id: ${idOf(entry)}\nevent: ${translated.success.event}\ndata: ${translated.success.data}\n\n`
      byVersion.set(version, message)
    }
    return message
  }

  handle(req: IncomingMessage, res: ServerResponse, url: URL, channel: string): void {
    const { env } = this
    const header = req.headers.authorization
    const token = header?.startsWith("Bearer ") ? header.slice(7).trim() : (url.searchParams.get("token") ?? undefined)
    const versionParam = url.searchParams.get("v")
    const version = versionParam === null ? Math.max(...env.codec.versions) : Number(versionParam)
    if (!env.codec.versions.includes(version)) {
      return json(res, 400, {
        error: "unsupported_version",
        message: `version ${versionParam} is not spoken here; ask for one of ${env.codec.versions.join(", ")} with ?v=`
      })
    }
    const lastId =
      (req.headers["last-event-id"] as string | undefined) ?? url.searchParams.get("lastEventId") ?? undefined
    const since = lastId === undefined || lastId === "" ? undefined : parseId(lastId)
    if (lastId !== undefined && lastId !== "" && since === undefined) {
      return json(res, 400, {
        error: "bad_position",
        message: `Last-Event-ID ${JSON.stringify(lastId)} is not <epoch>:<offset>`
      })
    }
    const start: Position | "start" | undefined =
      since ?? (url.searchParams.get("fromStart") === "1" ? "start" : undefined)
    env.run(
      env.auth.verify(token).pipe(
        Effect.matchEffect({
          onFailure: (error) => Effect.sync(() => json(res, 401, { error: error.reason, message: error.message })),
          onSuccess: (identity) =>
            identity.canRead(channel)
              ? this.stream(req, res, channel, version, start)
              : Effect.sync(() =>
                  json(res, 403, { error: "forbidden", message: `not allowed to read channel ${channel}` })
                )
        })
      )
    )
  }

  private stream(
    req: IncomingMessage,
    res: ServerResponse,
    channel: string,
    version: number,
    start: Position | "start" | undefined
  ): Effect.Effect<void> {
    const { env } = this
    const { transport, stats, limits } = env
    return Effect.gen({ self: this }, function* () {
      const scope = yield* Scope.make()
      let ended = false
      const gone = Deferred.makeUnsafe<void>()
      const end = () => {
        if (ended) return
        ended = true
        Deferred.doneUnsafe(gone, Exit.void)
        this.open.delete(res)
        stats.sseOpen--
        if (!res.writableEnded) res.end()
      }
      const write = (text: string) => {
        if (ended) return
        res.write(text)
        // a reader that does not keep up is cut off; it resumes from its Last-Event-ID
        if (res.writableLength > limits.maxOutboundBytes) {
          stats.sseSlowReaders++
          end()
        }
      }
      let last: Position = { epoch: "", offset: 0 }
      const send = (entry: Entry) => {
        if (entry.epoch === last.epoch && entry.offset <= last.offset) return
        if (last.epoch !== "" && entry.epoch !== last.epoch) {
          // the channel's log started over: say so before its first entry
          write(
            `id: ${entry.epoch}:0\nevent: reset\ndata: ${JSON.stringify({ reason: "epoch_changed", position: { epoch: entry.epoch, offset: 0 } })}\n\n`
          )
        }
        last = { epoch: entry.epoch, offset: entry.offset }
        const message = this.messageFor(entry, version)
        // an event this version does not see: its position still advances
        if (message === null) return
        stats.sseDeliveries++
        write(message)
      }
      const reset = (reason: string, top: Position) => {
        last = top
        write(`id: ${idOf(top)}\nevent: reset\ndata: ${JSON.stringify({ reason, position: top })}\n\n`)
      }

      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        connection: "keep-alive",
        "x-accel-buffering": "no"
      })
      res.write(`retry: 1000\n\n`)
      this.open.add(res)
      stats.sseOpen++
      req.on("close", end)

      // live entries that arrive while history is read wait here, then go out after it, without duplicates
      let buffered: Array<Entry> | undefined = []
      const caughtUp = yield* Effect.exit(
        Effect.gen(function* () {
          yield* transport
            .listen(channel, (entry) => {
              if (buffered) buffered.push(entry)
              else send(entry)
            })
            .pipe(Scope.provide(scope))
          if (start === undefined) {
            last = yield* transport.top(channel)
            return
          }
          let position: Position | undefined = start === "start" ? undefined : start
          for (;;) {
            const page: ReadResult = yield* transport.read(channel, position, PAGE)
            if (position === undefined) {
              position = { epoch: page.top.epoch, offset: (page.entries[0]?.offset ?? page.top.offset + 1) - 1 }
              last = position
            }
            const ahead = position.epoch === page.top.epoch && position.offset > page.top.offset
            if (!page.covered || ahead) {
              return reset(ahead ? "unknown_position" : (page.reason ?? "trimmed"), page.top)
            }
            if (last.epoch === "") last = position
            for (const entry of page.entries) send(entry)
            const tail = page.entries[page.entries.length - 1]
            if (tail === undefined || page.entries.length < PAGE || tail.offset >= page.top.offset) return
            position = { epoch: tail.epoch, offset: tail.offset }
          }
        }) as Effect.Effect<void, TransportError>
      )
      if (Exit.isFailure(caughtUp)) {
        write(
          `event: error\ndata: ${JSON.stringify({ code: "unavailable", message: `cannot read ${channel} now` })}\n\n`
        )
        end()
        yield* Scope.close(scope, Exit.void)
        return
      }
      const waiting = buffered
      buffered = undefined
      for (const entry of waiting) send(entry)

      // heartbeat comments until the reader goes away (or is cut off), then the listener is released
      const heartbeatMs = Math.min(env.timing.heartbeatMs, 15_000)
      while (!ended) {
        yield* Effect.raceFirst(Deferred.await(gone), Effect.sleep(heartbeatMs))
        write(": ping\n\n")
      }
      yield* Scope.close(scope, Exit.void)
    }).pipe(Effect.catchCause(() => Effect.void))
  }
}
