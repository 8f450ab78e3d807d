/**
 * What every WebSocket connection is, whatever it is asked: its socket and outbound queue, its identity and
 * session, flags, logs, the frames it sends (errors with their code and path, resets) in its codec — JSON text, or
 * MessagePack bytes once `markMsgpack` — the heartbeat and pings, the token's expiry, and closing (the close frame
 * first, then the socket, then what the connection holds, which Connection.ts lets go). Connection.ts adds what
 * the client's frames do.
 */
import { Effect, type Fiber, type Tracer } from "effect"
import { CloseCodes } from "../../protocol/CloseCodes.ts"
import type { ErrorCode } from "../../protocol/ErrorCode.ts"
import { encodeFrame } from "../../protocol/EventFrame.ts"
import type { ResetReason, ServerFrame } from "../../protocol/Frames.ts"
import * as MessagePack from "../../protocol/MessagePack.ts"
import type { Codec } from "../../protocol/Negotiation.ts"
import type { Position } from "../../protocol/Position.ts"
import type { Identity } from "../auth/index.ts"
import type { Limits, Timing } from "../Options.ts"
import { Outbound, type OutboundOwner, SharedFrame } from "../outbound/index.ts"
import type { Stats } from "../Stats.ts"
import type { Spans } from "../Tracing.ts"
import type { ConnectionSocket, SocketOwner } from "./ConnectionSocket.ts"

const PING = encodeFrame({ type: "ping" })
/** A control frame for one MessagePack connection (never marked shared, so one object serves every connection). */
export const msgpackFrame = (frame: ServerFrame): SharedFrame => new SharedFrame(MessagePack.encode(frame), false)
const PING_MSGPACK = msgpackFrame({ type: "ping" })

/** Bits of a connection's `flags`: one field instead of several booleans (a connection's memory is counted in bytes). */
export const CLOSED = 1
export const PING_OUTSTANDING = 2
export const AUTHENTICATING = 4
export const COUNTED_FOR_USER = 8
/** The current token's `expiring_soon` warning was sent. */
export const EXPIRY_WARNED = 16
/** A plain connection (no subprotocol offered): heartbeats are WebSocket pings, which every client answers. */
export const PLAIN = 32
/** The connection negotiated MessagePack: binary frames both ways. */
export const MSGPACK = 64
/** The connection negotiated the compact envelope: alias frames, and events as arrays. */
export const COMPACT = 128

/** What the core of a connection needs from its server. */
export interface CoreEnv {
  readonly limits: Limits
  readonly timing: Timing
  readonly stats: Stats
  /** Forks an effect into the server's scope. */
  readonly fork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
  /** Whether Debug lines are logged at all (read once from MinimumLogLevel: no fiber per skipped line). */
  readonly debugLogs: boolean
  /** Set when tracing is on (Tracing.ts). */
  readonly spans: Spans | undefined
  /** Records one publish → socket-write latency (ms), once per write that carried an event. */
  readonly observeDeliveryLatency: (ms: number) => void
  /** A fresh connection id (for logs and command handlers; made at first use). */
  readonly newConnectionId: () => string
  readonly now: () => number
}

export abstract class ConnectionCore<E extends CoreEnv> implements OutboundOwner, SocketOwner {
  readonly outbound: Outbound
  /** Which slice of the server's heartbeat and cursor-save intervals this connection is handled in. */
  timerSlice = 0
  identity: Identity | undefined
  session = ""
  /** CLOSED, PING_OUTSTANDING, AUTHENTICATING, COUNTED_FOR_USER, EXPIRY_WARNED, PLAIN, MSGPACK. */
  protected flags = 0
  private connectionId: string | undefined
  /** From welcome to close, when tracing is on: its commands are its children. */
  span: Tracer.Span | undefined

  constructor(
    readonly socket: ConnectionSocket,
    readonly ip: string,
    readonly version: number,
    protected readonly env: E
  ) {
    this.outbound = new Outbound(this)
    // the socket reports to this connection directly (ConnectionSocket.ts): no listeners, no closures
    socket.owner = this
  }

  /** The bound on bytes waiting for this socket (OutboundOwner). */
  get maxOutboundBytes(): number {
    return this.env.limits.maxOutboundBytes
  }

  /** Outbound bound passed (OutboundOwner). */
  outboundOverflow(): void {
    this.env.stats.slowConsumerCloses++
    this.close(CloseCodes.slowConsumer, "slow consumer: outbound buffer full; reconnect and resume")
  }

  /** A socket write (OutboundOwner). */
  outboundWrite(frames: number, bytes: number, oldestEventTime: number | undefined): void {
    const { stats } = this.env
    stats.framesOut += frames
    stats.bytesOut += bytes
    stats.messagesOut++
    if (oldestEventTime !== undefined) this.env.observeDeliveryLatency(this.env.now() - oldestEventTime)
  }

  /** The connection's id, made at first use: only logs and command handlers ask for it. */
  get id(): string {
    if (this.connectionId === undefined) this.connectionId = this.env.newConnectionId()
    return this.connectionId
  }

  /** Whether the server counted this connection against its user's connection limit (the server sets it). */
  get countedForUser(): boolean {
    return this.flag(COUNTED_FOR_USER)
  }

  set countedForUser(counted: boolean) {
    this.setFlag(COUNTED_FOR_USER, counted)
  }

  protected flag(bit: number): boolean {
    return (this.flags & bit) !== 0
  }

  protected setFlag(bit: number, on: boolean): void {
    this.flags = on ? this.flags | bit : this.flags & ~bit
  }

  /** The server's counters (SubscriberSink). */
  get stats(): Stats {
    return this.env.stats
  }

  get user(): string | null | undefined {
    return this.identity?.user
  }

  /**
   * A connection that offered no subprotocol (a plain WebSocket): its heartbeats are WebSocket-level pings, and
   * its frames go one per message unless it asked for batches.
   */
  markPlain(batched: boolean): void {
    this.setFlag(PLAIN, true)
    if (!batched) this.outbound.oneFramePerMessage()
  }

  /** The connection negotiated MessagePack (the server calls it before the first frame is sent). */
  markMsgpack(): void {
    this.setFlag(MSGPACK, true)
  }

  /** The wire codec this connection negotiated (SubscriberSink). */
  get wire(): Codec {
    return this.flag(MSGPACK) ? "msgpack" : "json"
  }

  /** The connection negotiated the compact envelope (the server calls it before the first frame is sent). */
  markCompact(): void {
    this.setFlag(COMPACT, true)
  }

  /** Whether events go out in the compact envelope (SubscriberSink). */
  get compact(): boolean {
    return this.flag(COMPACT)
  }

  // ---- logs ---------------------------------------------------------------------------------------------------

  /** Structured log line annotated with the connection, user and IP (rare events only, never per message). */
  protected log(level: "Debug" | "Info" | "Warn", message: string, annotations: Record<string, unknown> = {}): void {
    if (level === "Debug" && !this.env.debugLogs) return
    const line =
      level === "Debug"
        ? Effect.logDebug(message)
        : level === "Info"
          ? Effect.logInfo(message)
          : Effect.logWarning(message)
    this.env.fork(
      line.pipe(
        Effect.annotateLogs({
          connection: this.id,
          user: this.identity?.user ?? "anonymous",
          ip: this.ip,
          ...annotations
        })
      )
    )
  }

  // ---- outbound -----------------------------------------------------------------------------------------------

  send(frame: ServerFrame): void {
    this.outbound.push(this.flag(MSGPACK) ? msgpackFrame(frame) : encodeFrame(frame))
  }

  sendError(
    code: ErrorCode,
    message: string,
    extra: { path?: ReadonlyArray<string | number>; id?: string; channel?: string; retryAfterMs?: number } = {}
  ): void {
    this.env.stats.bump(this.env.stats.errors, code)
    const frame: ServerFrame = {
      type: "error",
      code,
      message,
      ...(extra.path && extra.path.length > 0 ? { path: [...extra.path] } : {}),
      ...(extra.id !== undefined ? { id: extra.id } : {}),
      ...(extra.channel !== undefined ? { channel: extra.channel } : {}),
      ...(extra.retryAfterMs !== undefined ? { retryAfterMs: extra.retryAfterMs } : {})
    }
    this.send(frame)
  }

  sendAlias(alias: number, channel: string, epoch: string): void {
    this.send({ type: "alias", alias, channel, epoch })
  }

  sendReset(channel: string, reason: ResetReason, position: Position): void {
    this.log("Debug", "reset", { channel, reason, offset: position.offset })
    this.send({ type: "reset", channel, reason, position })
  }

  /** Heartbeat tick from the server: drop a peer that did not answer the previous ping. */
  heartbeat(): void {
    if (this.flag(CLOSED)) return
    if (this.flag(PING_OUTSTANDING)) {
      this.close(CloseCodes.heartbeatTimeout, "no pong within two heartbeat intervals")
      return
    }
    this.setFlag(PING_OUTSTANDING, true)
    if (this.flag(PLAIN)) this.socket.ping()
    else this.outbound.push(this.flag(MSGPACK) ? PING_MSGPACK : PING)
  }

  // ---- inbound ------------------------------------------------------------------------------------------------

  /** A ping frame: answered with a pong unless the socket is already backed up past the outbound bound. */
  onPing(data: Buffer): void {
    if (this.flag(CLOSED)) return
    if (this.outbound.buffered > this.maxOutboundBytes) return this.outboundOverflow()
    this.socket.pong(data, false)
  }

  /** A WebSocket-level pong (SocketOwner): the peer is alive, as any message from it says. */
  onPong(): void {
    this.setFlag(PING_OUTSTANDING, false)
  }

  /** The socket closed or failed (SocketOwner). */
  onSocketGone(): void {
    this.cleanup()
  }

  /**
   * The token's expiry, checked by the server for every connection a few times a second (one timer for all: two
   * timers per connection, with their closures, cost about 0.7 KiB of heap per connection, measured with
   * `bench/micro/idle-heap.ts` and tokens with `exp`): `expiring_soon` once `tokenExpiryWarningMs` before `exp`,
   * then the close at `exp`, each at most one check late.
   */
  checkExpiry(now: number): void {
    const expiresAt = this.identity?.expiresAt
    if (expiresAt === undefined || this.flag(CLOSED)) return
    if (now >= expiresAt) return this.close(CloseCodes.tokenExpired, "token expired")
    if (this.flag(EXPIRY_WARNED) || now < expiresAt - this.env.timing.tokenExpiryWarningMs) return
    this.setFlag(EXPIRY_WARNED, true)
    this.send({ type: "session_update", status: "expiring_soon", expiresInMs: expiresAt - now })
  }

  /** Whether the connection closed (CatchUpHost). */
  get closed(): boolean {
    return this.flag(CLOSED)
  }

  // ---- closing ------------------------------------------------------------------------------------------------

  close(code: number, reason: string): void {
    if (this.flag(CLOSED)) return
    this.outbound.flush() // the error frame that explains the close goes out first
    this.outbound.close()
    this.env.stats.bump(this.env.stats.connectionsClosed, code)
    this.log(code === CloseCodes.goingAway ? "Debug" : "Info", "closing connection", { code, reason })
    this.socket.close(code, reason.slice(0, 120))
    // a peer that does not complete the close handshake is cut off
    setTimeout(() => this.socket.terminate(), 2_000).unref()
    this.cleanup()
  }

  /** Releases everything once the socket is gone (idempotent; also called by the socket's close and error). */
  cleanup(): void {
    if (this.flag(CLOSED)) return
    this.setFlag(CLOSED, true)
    this.outbound.close()
    if (this.span) this.env.spans!.end(this.span)
    this.release()
  }

  /** What the connection holds beyond its socket (subscriptions, cursors, commands, timers), let go at cleanup. */
  protected abstract release(): void

  /** Whether nothing is left to write (graceful shutdown waits for this). */
  get idle(): boolean {
    return this.outbound.idle
  }

  /** A message from the socket (SocketOwner). */
  abstract onMessage(data: import("ws").WebSocket.RawData, isBinary: boolean): void
}
