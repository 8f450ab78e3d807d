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
 * where the server allows it; streams count against the connection limits like WebSockets. A comment every
 * heartbeat keeps proxies from closing an idle stream; a reader whose unsent bytes pass `maxOutboundBytes` is cut
 * off (SseStream.ts) and resumes with its Last-Event-ID.
 *
 * The streams of a channel on this node share one transport listener and each entry's message text; a turn's
 * writes to a stream leave in one socket write; one timer sends every stream's heartbeat. A catch-up waits for its
 * socket to drain before it writes more.
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { Deferred, Effect, Exit, type Fiber, Result, Scope } from "effect"
import type { Position } from "../../protocol/Position.ts"
import type { ProtocolCodec } from "../../protocol/ProtocolCodec.ts"
import type { Entry, ReadResult, TransportError, TransportShape } from "../../transports/Transport.ts"
import type { Authenticator } from "../auth/index.ts"
import type { Limits, Timing } from "../Options.ts"
import type { Stats } from "../Stats.ts"
import { idOf, SseStream, type StreamHost } from "./SseStream.ts"

const PAGE = 1000

export interface SseEnv {
  readonly transport: TransportShape
  readonly codec: ProtocolCodec
  readonly auth: Authenticator
  readonly limits: Limits
  readonly timing: Timing
  readonly stats: Stats
  readonly run: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
  /**
   * Admits a stream of `user` against the server's connection limits (total and per user, shared with WebSocket
   * connections): undefined when admitted, else the refusal; `released` gives its place back.
   */
  readonly admit: (
    user: string | null
  ) => { readonly status: number; readonly error: string; readonly message: string } | undefined
  readonly released: (user: string | null) => void
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

const json = (res: ServerResponse, status: number, body: unknown): void =>
  void res
    .writeHead(status, { "content-type": "application/json", "cache-control": "no-store" })
    .end(JSON.stringify(body))

/** A channel's streams on this node and their one transport listener. */
interface ChannelStreams {
  readonly streams: Set<SseStream>
  readonly scope: Scope.Closeable
  /** Done once the listener is registered (or failed to be). */
  readonly listening: Deferred.Deferred<void, TransportError>
}

/** The open streams of a server, ended at its shutdown. */
export class SseStreams {
  private readonly open = new Set<SseStream>()
  private readonly channels = new Map<string, ChannelStreams>()
  /**
   * Each entry's SSE message per version, built once: the transports hand one entry object to every listener of
   * its channel, so the streams of a channel on this node share the translation and the text.
   */
  private readonly messages = new WeakMap<Entry, Map<number, string | null>>()
  private readonly dirty = new Set<SseStream>()
  private flushScheduled = false
  private readonly heartbeat: ReturnType<typeof setInterval>
  private readonly host: StreamHost

  constructor(private readonly env: SseEnv) {
    const { stats } = env
    this.host = {
      maxOutboundBytes: env.limits.maxOutboundBytes,
      messageFor: (entry, version) => this.messageFor(entry, version),
      schedule: (stream) => {
        this.dirty.add(stream)
        if (this.flushScheduled) return
        this.flushScheduled = true
        setImmediate(() => this.flushAll())
      },
      delivered: () => {
        stats.sseDeliveries++
      },
      cutOff: () => {
        stats.sseSlowReaders++
      },
      closed: (stream) => this.forget(stream)
    }
    this.heartbeat = setInterval(
      () => {
        for (const stream of this.open) if (!stream.buffered) stream.write(": ping\n\n")
      },
      Math.min(env.timing.heartbeatMs, 15_000)
    )
  }

  get size(): number {
    return this.open.size
  }

  /** Ends every stream (the server is shutting down; readers reconnect elsewhere with their Last-Event-ID). */
  closeAll(): void {
    clearInterval(this.heartbeat)
    this.flushAll()
    for (const stream of [...this.open]) stream.close()
  }

  private flushAll(): void {
    this.flushScheduled = false
    const streams = [...this.dirty]
    this.dirty.clear()
    for (const stream of streams) stream.flush(stream.buffered === undefined)
  }

  private forget(stream: SseStream): void {
    if (!this.open.delete(stream)) return
    this.dirty.delete(stream)
    this.env.stats.sseOpen--
    this.env.released(stream.user)
    this.leaveChannel(stream)
  }

  /** Removes `stream` from its channel's listener; the channel's last stream releases the listener. */
  private leaveChannel(stream: SseStream): void {
    const channel = this.channels.get(stream.channel)
    if (channel === undefined || !channel.streams.delete(stream) || channel.streams.size > 0) return
    this.channels.delete(stream.channel)
    this.env.run(Scope.close(channel.scope, Exit.void))
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

  /** Adds `stream` to its channel's listener, registering the listener for the channel's first stream. */
  private join(stream: SseStream): Effect.Effect<void, TransportError> {
    return Effect.gen({ self: this }, function* () {
      let channel = this.channels.get(stream.channel)
      if (channel === undefined) {
        const created: ChannelStreams = {
          streams: new Set(),
          scope: yield* Scope.make(),
          listening: Deferred.makeUnsafe<void, TransportError>()
        }
        channel = created
        this.channels.set(stream.channel, created)
        const registered = yield* Effect.exit(
          this.env.transport
            .listen(stream.channel, (entry) => {
              for (const s of created.streams) s.live(entry)
            })
            .pipe(Scope.provide(created.scope))
        )
        Deferred.doneUnsafe(created.listening, registered)
        if (Exit.isFailure(registered) && this.channels.get(stream.channel) === created) {
          this.channels.delete(stream.channel)
        }
      }
      channel.streams.add(stream)
      // a reader gone while the listener was being registered
      if (stream.ended) this.leaveChannel(stream)
      yield* Deferred.await(channel.listening)
    })
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
          onSuccess: (identity) => {
            if (!identity.canRead(channel)) {
              return Effect.sync(() =>
                json(res, 403, { error: "forbidden", message: `not allowed to read channel ${channel}` })
              )
            }
            const refused = env.admit(identity.user)
            if (refused)
              return Effect.sync(() => json(res, refused.status, { error: refused.error, message: refused.message }))
            return this.stream(req, res, channel, version, start, identity.user)
          }
        })
      )
    )
  }

  private stream(
    req: IncomingMessage,
    res: ServerResponse,
    channel: string,
    version: number,
    start: Position | "start" | undefined,
    user: string | null
  ): Effect.Effect<void> {
    const { transport, stats, limits } = this.env
    const stream = new SseStream(res, channel, version, user, this.host)
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-accel-buffering": "no"
    })
    res.write("retry: 1000\n\n")
    this.open.add(stream)
    stats.sseOpen++
    req.on("close", () => stream.close())
    /** Writes what the catch-up queued and, past half the limit, waits for the socket to take it. */
    const paced = Effect.suspend(() => {
      if (stream.unsent < limits.maxOutboundBytes / 2) return Effect.void
      stream.flush(false)
      if (stream.ended || res.writableLength < limits.maxOutboundBytes / 2) return Effect.void
      return Effect.callback<void>((resume) => {
        const done = () => {
          res.off("drain", done)
          res.off("close", done)
          resume(Effect.void)
        }
        res.once("drain", done)
        res.once("close", done)
      })
    })
    return Effect.gen({ self: this }, function* () {
      // the listener is registered first: live entries wait in `buffered` while history is read
      yield* this.join(stream)
      if (start === undefined) {
        stream.last = yield* transport.top(channel)
        return
      }
      let position: Position | undefined = start === "start" ? undefined : start
      for (;;) {
        if (stream.ended) return
        const page: ReadResult = yield* transport.read(channel, position, PAGE)
        if (position === undefined) {
          position = { epoch: page.top.epoch, offset: (page.entries[0]?.offset ?? page.top.offset + 1) - 1 }
          stream.last = position
        }
        const ahead = position.epoch === page.top.epoch && position.offset > page.top.offset
        if (!page.covered || ahead)
          return stream.reset(ahead ? "unknown_position" : (page.reason ?? "trimmed"), page.top)
        if (stream.last.epoch === "") stream.last = position
        for (const entry of page.entries) {
          stream.send(entry)
          yield* paced
        }
        const tail = page.entries[page.entries.length - 1]
        if (tail === undefined || page.entries.length < PAGE || tail.offset >= page.top.offset) return
        position = { epoch: tail.epoch, offset: tail.offset }
      }
    }).pipe(
      Effect.matchEffect({
        onFailure: () =>
          Effect.sync(() => {
            stream.write(
              `event: error\ndata: ${JSON.stringify({ code: "unavailable", message: `cannot read ${channel} now` })}\n\n`
            )
            stream.flush(false)
            stream.close()
          }),
        onSuccess: () =>
          Effect.sync(() => {
            // live from here: what arrived meanwhile goes out after history, without duplicates
            const waiting = stream.buffered ?? []
            stream.buffered = undefined
            for (const entry of waiting) stream.send(entry)
          })
      })
    )
  }
}
