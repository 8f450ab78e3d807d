/**
 * What a WebSocket connection does with its client's frames: authentication (and token refresh in band),
 * subscriptions and their catch-up (CatchUp.ts), acks and session cursors, commands (ConnectionCommands.ts); its
 * socket, sending, heartbeat, expiry and closing are ConnectionCore.ts'. Inbound frames are handled in plain code; only work that waits (transport reads,
 * handlers) runs as a fiber, forked into the server's scope. Every malformed frame gets an `error` frame with
 * a code, a message and the path of the bad field; the connection stays up.
 */
import { Effect, Fiber, Result } from "effect"
import type { WebSocket } from "ws"
import { CloseCodes } from "../../protocol/CloseCodes.ts"
import type { CommandUnavailable } from "../../protocol/CommandUnavailable.ts"
import { encodeFrame, splitMessage } from "../../protocol/EventFrame.ts"
import type { ClientFrame, ServerFrame } from "../../protocol/Frames.ts"
import type { Position } from "../../protocol/Position.ts"
import type { ErasedReply, ProtocolCodec } from "../../protocol/ProtocolCodec.ts"
import type { PresenceMember } from "../../transports/presence/PresenceStore.ts"
import { type CursorWrite, saveCursors, type TransportError, type TransportShape } from "../../transports/Transport.ts"
import type { Authenticator, AuthFailed, Identity } from "../auth/index.ts"
import { type Hub, type Read, Subscription } from "../fanout/index.ts"
import type { Limits, Timing } from "../Options.ts"
import type { PresenceTracker } from "../presence/index.ts"
import type { Stats } from "../Stats.ts"
import type { Spans } from "../Tracing.ts"
import { catchUp } from "./CatchUp.ts"
import { ConnectionCommands } from "./ConnectionCommands.ts"
import {
  AUTHENTICATING,
  CLOSED,
  ConnectionCore,
  type CoreEnv,
  EXPIRY_WARNED,
  MSGPACK,
  msgpackFrame,
  PING_OUTSTANDING
} from "./ConnectionCore.ts"
import * as Inbound from "./Inbound.ts"
import { SessionCursors } from "./SessionCursors.ts"
import * as Subscriptions from "./Subscriptions.ts"

const PONG = encodeFrame({ type: "pong" })
const PONG_MSGPACK = msgpackFrame({ type: "pong" })

/** Runs a command's handler; fails with CommandUnavailable when the command cannot run now (answered `unavailable`). */
export type CommandRunner = (
  command: { readonly name: string; readonly payload: unknown },
  connection: Connection
) => Effect.Effect<ErasedReply, CommandUnavailable>

export interface ConnectionEnv extends CoreEnv {
  readonly codec: ProtocolCodec
  readonly transport: TransportShape
  /** History reads, shared by subscriptions asking for the same page at once (SharedReads.ts). */
  readonly read: Read
  readonly hub: Hub
  readonly auth: Authenticator
  readonly limits: Limits
  readonly timing: Timing
  readonly stats: Stats
  readonly now: () => number
  /** Forks an effect into the server's scope. */
  readonly fork: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
  /** Whether Debug lines are logged at all (read once from MinimumLogLevel: no fiber per skipped line). */
  readonly debugLogs: boolean
  /** Set when tracing is on (Tracing.ts). */
  readonly spans: Spans | undefined
  readonly runCommand: CommandRunner
  /** Records one publish → socket-write latency (ms), once per write that carried an event. */
  readonly observeDeliveryLatency: (ms: number) => void
  readonly newSession: () => string
  /** A fresh connection id (for logs and command handlers; made at first use). */
  readonly newConnectionId: () => string
  /** Called once when the connection has closed and cleaned up. */
  readonly onClosed: (connection: Connection) => void
  /** Presence, when the server has it (src/server/presence). */
  readonly presence: PresenceTracker | undefined
  /** Called when a connection authenticates (or changes user); false refuses it (per-user limit). */
  readonly onAuthenticated: (connection: Connection, previousUser: string | null | undefined) => boolean
}

/** The frame that tells a client it is in: its session, the protocol version, the server's limits. */
const welcome = (env: ConnectionEnv, session: string, version: number, user: string | null): ServerFrame => ({
  type: "welcome",
  session,
  protocol: env.codec.name,
  version,
  user,
  heartbeatMs: env.timing.heartbeatMs,
  limits: {
    maxFrameBytes: env.limits.maxFrameBytes,
    maxSubscriptions: env.limits.maxSubscriptions,
    commandsPerSecond: env.limits.commandsPerSecond
  }
})

export class Connection extends ConnectionCore<ConnectionEnv> {
  private subscriptions: Subscriptions.Subscriptions = undefined
  /** Acked and restored positions (made at the first ack or when a session resumes). */
  private cursors: SessionCursors | undefined
  /** Rate limit and commands in flight (made at the first command). */
  private commands: ConnectionCommands | undefined
  /** Until the connection authenticates (token expiry is the server's sweep: see checkExpiry). */
  private authTimer: ReturnType<typeof setTimeout> | undefined

  get subscriptionCount(): number {
    return Subscriptions.count(this.subscriptions)
  }

  /** Starts the connection: with an identity from the upgrade, welcome at once; else wait for `authenticate`. */
  start(identity: Identity | undefined, session: string | undefined): void {
    if (identity) {
      this.authenticated(identity, session)
      return
    }
    this.authTimer = setTimeout(
      () => this.close(CloseCodes.authTimeout, "no authenticate frame in time"),
      this.env.timing.authTimeoutMs
    )
  }

  /** A message from the socket (SocketOwner). */
  onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (this.flag(CLOSED)) return
    this.setFlag(PING_OUTSTANDING, false)
    const size = Inbound.messageSize(data)
    this.env.stats.bytesIn += size
    if (this.flag(MSGPACK)) return this.onBinaryMessage(data, isBinary, size)
    const text = Inbound.messageText(data, isBinary, size, this.env.limits.maxFrameBytes)
    if (Result.isFailure(text)) {
      this.env.stats.framesIn++
      return this.refuse(text.failure)
    }
    for (const raw of splitMessage(text.success)) {
      if (this.flag(CLOSED)) return
      this.env.stats.framesIn++
      this.onFrame(raw)
    }
  }

  /** A message on a MessagePack connection: one or more MessagePack frames back to back. */
  private onBinaryMessage(data: WebSocket.RawData, isBinary: boolean, size: number): void {
    const values = Inbound.messageValues(data, isBinary, size, this.env.limits.maxFrameBytes)
    if (Result.isFailure(values)) {
      this.env.stats.framesIn++
      return this.refuse(values.failure)
    }
    for (const value of values.success) {
      if (this.flag(CLOSED)) return
      this.env.stats.framesIn++
      this.onDecoded(Inbound.decodeValue(value))
    }
  }

  private refuse(refusal: Inbound.Refusal): void {
    this.sendError(refusal.code, refusal.message, {
      ...(refusal.path ? { path: refusal.path } : {}),
      ...(refusal.id !== undefined ? { id: refusal.id } : {})
    })
  }

  private onFrame(raw: string): void {
    this.onDecoded(Inbound.decodeFrame(raw))
  }

  private onDecoded(decoded: Result.Result<ClientFrame, Inbound.Refusal>): void {
    if (Result.isFailure(decoded)) return this.refuse(decoded.failure)
    const frame = decoded.success
    if (frame.type === "ping") return this.outbound.push(this.flag(MSGPACK) ? PONG_MSGPACK : PONG)
    if (frame.type === "pong") return
    if (frame.type === "authenticate") return this.onAuthenticate(frame.token, frame.session)
    if (!this.identity) {
      this.sendError("not_authenticated", "send an authenticate frame first")
      return
    }
    switch (frame.type) {
      case "subscribe":
        return this.onSubscribe(frame.channel, frame.since, frame.fromStart === true)
      case "unsubscribe":
        return this.onUnsubscribe(frame.channel)
      case "ack":
        return this.onAck(frame.channel, { epoch: frame.epoch, offset: frame.offset })
      case "command":
        return this.onCommand(frame.id, frame.name, frame.payload)
      case "presence":
        return this.onPresence(frame.id, frame.channel)
    }
  }

  // ---- authentication -----------------------------------------------------------------------------------------

  private onAuthenticate(token: string | undefined, session: string | undefined): void {
    if (this.flag(AUTHENTICATING)) {
      this.sendError("bad_frame", "an authenticate frame is already being processed")
      return
    }
    this.setFlag(AUTHENTICATING, true)
    this.env.fork(
      this.env.auth.verify(token).pipe(
        Effect.match({
          onFailure: (error: AuthFailed) => {
            this.setFlag(AUTHENTICATING, false)
            if (this.identity) {
              // a failed refresh keeps the current identity until it expires
              this.sendError("auth_failed", `token refresh refused: ${error.message}`)
              return
            }
            this.sendError("auth_failed", error.message)
            // an expired token is refreshable (4403); anything else needs a different token (4401)
            this.close(
              error.reason === "expired_token" ? CloseCodes.tokenExpired : CloseCodes.unauthorized,
              error.reason
            )
          },
          onSuccess: (identity) => {
            this.setFlag(AUTHENTICATING, false)
            if (!this.identity) return this.authenticated(identity, session)
            if (identity.user !== this.identity.user) {
              this.sendError("forbidden", "a refreshed token must have the same subject as the session")
              return
            }
            this.identity = identity
            this.setFlag(EXPIRY_WARNED, false)
            this.send({ type: "session_update", status: "refreshed" })
            // the fresh token's rights apply at once: subscriptions it no longer allows end
            for (const { channel } of Subscriptions.all(this.subscriptions)) {
              if (!identity.canRead(channel)) {
                this.sendError("forbidden", `the refreshed token may not read ${channel}`, { channel })
                this.dropSubscription(channel)
              }
            }
          }
        })
      )
    )
  }

  private authenticated(identity: Identity, session: string | undefined): void {
    if (this.flag(CLOSED)) return
    this.clearAuthTimer()
    if (identity.expiresAt !== undefined && identity.expiresAt <= this.env.now()) {
      this.sendError("auth_failed", "the token has expired")
      this.close(CloseCodes.tokenExpired, "token expired")
      return
    }
    this.identity = identity
    if (!this.env.onAuthenticated(this, undefined)) {
      this.close(CloseCodes.tooManyConnections, "too many connections for this user")
      return
    }
    // a session id is only meaningful for its own user: the cursor key includes the user
    this.session = session && /^[A-Za-z0-9_-]{8,128}$/.test(session) ? session : this.env.newSession()
    this.log("Debug", "authenticated", { session: this.session, version: this.version })
    if (this.env.spans && !this.span) {
      this.span = this.env.spans.start("tidings.connection", "server", {
        "tidings.connection": this.id,
        "tidings.user": identity.user ?? "anonymous",
        "tidings.protocol.version": this.version,
        "client.address": this.ip
      })
    }
    this.send(welcome(this.env, this.session, this.version, identity.user))
    if (session) {
      ;(this.cursors ??= new SessionCursors()).load(this.cursorKey, this.env.transport, this.env.fork, (error) =>
        this.log("Warn", "could not load session cursors; subscriptions without a position start live", {
          error: error.message
        })
      )
    }
  }

  private get cursorKey(): string {
    return `${this.identity?.user ?? "anonymous"}/${this.session}`
  }

  private clearAuthTimer(): void {
    if (this.authTimer !== undefined) clearTimeout(this.authTimer)
    this.authTimer = undefined
  }

  // ---- subscriptions ------------------------------------------------------------------------------------------

  private onSubscribe(requested: string, since: Position | undefined, fromStart: boolean): void {
    // the node's own copy of the name, if it has one: subscriptions keep it for as long as they live
    const channel = this.env.hub.channelName(requested)
    if (!this.identity!.canRead(channel)) {
      this.log("Info", "subscribe refused", { channel })
      this.sendError("forbidden", `not allowed to read channel ${channel}`, { channel, path: ["channel"] })
      return
    }
    const existing = Subscriptions.get(this.subscriptions, channel)
    if (!existing && Subscriptions.count(this.subscriptions) >= this.env.limits.maxSubscriptions) {
      this.sendError(
        "too_many_subscriptions",
        `at most ${this.env.limits.maxSubscriptions} subscriptions per connection`,
        {
          channel
        }
      )
      return
    }
    const subscription = new Subscription(channel, this)
    this.subscriptions = Subscriptions.put(this.subscriptions, subscription)
    const run = Effect.gen({ self: this }, function* () {
      if (this.cursors) yield* this.cursors.loaded
      const start = since ?? this.cursors?.savedPosition(channel)
      if (existing) yield* this.env.hub.leave(existing)
      yield* this.env.hub.join(subscription)
      const { recovered, replayed } = yield* catchUp(
        this,
        this.env,
        subscription,
        start ?? (fromStart ? "start" : undefined)
      )
      if (Subscriptions.get(this.subscriptions, channel) !== subscription) return
      subscription.goLive()
      this.env.presence?.joined(this.presenceMember(), channel)
      this.log("Debug", "subscribed", { channel, recovered, replayed })
      this.send({
        type: "subscribed",
        channel,
        position: { epoch: subscription.epoch, offset: subscription.offset },
        recovered,
        replayed
      })
    })
    this.env.fork(
      run.pipe(
        Effect.catch((error: TransportError) =>
          Effect.sync(() => {
            if (Subscriptions.get(this.subscriptions, channel) === subscription) {
              this.subscriptions = Subscriptions.remove(this.subscriptions, channel)
            }
            this.sendError("unavailable", `cannot subscribe to ${channel} now: ${error.message}`, { channel })
            return this.env.hub.leave(subscription)
          }).pipe(Effect.flatten)
        )
      )
    )
  }

  /** Whether the connection closed, or `subscription` is no longer its subscription of the channel (CatchUpHost). */
  superseded(subscription: Subscription): boolean {
    return this.flag(CLOSED) || Subscriptions.get(this.subscriptions, subscription.channel) !== subscription
  }

  private onUnsubscribe(channel: string): void {
    const subscription = Subscriptions.get(this.subscriptions, channel)
    if (!subscription) {
      this.sendError("not_subscribed", `not subscribed to ${channel}`, { channel })
      return
    }
    this.dropSubscription(channel)
  }

  private dropSubscription(channel: string): void {
    const subscription = Subscriptions.get(this.subscriptions, channel)
    if (!subscription) return
    this.subscriptions = Subscriptions.remove(this.subscriptions, channel)
    this.env.fork(this.env.hub.leave(subscription))
    this.env.presence?.left(this.id, channel)
    this.send({ type: "unsubscribed", channel })
  }

  // ---- presence -----------------------------------------------------------------------------------------------

  private presenceMember(): PresenceMember {
    const identity = this.identity!
    return {
      id: this.id,
      user: identity.user,
      session: this.session,
      ...(identity.info !== undefined ? { info: identity.info } : {})
    }
  }

  private onPresence(id: string, channel: string): void {
    const presence = this.env.presence
    if (!this.identity!.canRead(channel)) {
      this.sendError("forbidden", `not allowed to read channel ${channel}`, { id, channel, path: ["channel"] })
      return
    }
    if (presence === undefined || !presence.enabled(channel)) {
      this.sendError("forbidden", `channel ${channel} has no presence on this server`, { id, channel })
      return
    }
    this.env.fork(
      presence.members(channel).pipe(
        Effect.match({
          onFailure: (error) =>
            this.sendError("unavailable", `presence of ${channel}: ${error.message}`, { id, channel }),
          onSuccess: (members) => this.send({ type: "presence", id, channel, members: [...members] })
        })
      )
    )
  }

  private onAck(channel: string, position: Position): void {
    const subscription = Subscriptions.get(this.subscriptions, channel)
    if (!subscription) {
      this.sendError("not_subscribed", `ack for ${channel}, which this connection is not subscribed to`, { channel })
      return
    }
    // before a (re)subscription has a position, an ack for what an earlier subscription delivered is accepted:
    // it only moves this session's own cursor
    if (subscription.epoch !== "" && (position.epoch !== subscription.epoch || position.offset > subscription.offset)) {
      this.sendError("bad_position", `ack beyond what was delivered on ${channel}`, { channel, path: ["offset"] })
      return
    }
    ;(this.cursors ??= new SessionCursors()).ack(channel, position)
  }

  /**
   * Moves the saves of this connection's acked positions that changed since the last call into `into`. The
   * server calls it for every connection once per `cursorFlushMs` (one timer for all connections), and a
   * closing connection once more.
   */
  takeCursorWrites(into: Array<CursorWrite>): void {
    if (this.cursors && this.identity) this.cursors.takeWrites(this.cursorKey, into)
  }

  // ---- commands -----------------------------------------------------------------------------------------------

  private onCommand(id: string, name: string, payload: unknown): void {
    const { limits } = this.env
    this.commands ??= new ConnectionCommands(limits.commandsPerSecond, limits.commandBurst, this.env.now())
    this.commands.handle(this, this.env, { id, name, payload })
  }

  /** Saves the last cursors, leaves the subscriptions, interrupts running commands (cleanup). */
  protected release(): void {
    this.clearAuthTimer()
    const finalWrites: Array<CursorWrite> = []
    this.takeCursorWrites(finalWrites)
    if (finalWrites.length > 0) this.env.fork(saveCursors(this.env.transport, finalWrites).pipe(Effect.ignore))
    const subscriptions = Subscriptions.all(this.subscriptions)
    this.subscriptions = undefined
    if (this.env.presence) for (const { channel } of subscriptions) this.env.presence.left(this.id, channel)
    const commands = this.commands?.takeRunning() ?? []
    this.env.fork(
      Effect.all([
        Effect.forEach(subscriptions, (s) => this.env.hub.leave(s), { discard: true }),
        Effect.forEach(commands, (f) => Fiber.interrupt(f), { discard: true })
      ])
    )
    this.env.onClosed(this)
  }
}
