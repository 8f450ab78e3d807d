/**
 * The client's connection behind the Client interface: its methods, and what the server's frames mean — the
 * welcome, pings, errors (a command's, or a channel's), goaway, token refresh in band, events, replies. The
 * lifecycle (sockets, reconnects, the watchdog, state) is ConnectionCore.ts'.
 *
 * Channels, positions, delivery and acks are Channels.ts'; in-flight commands Commands.ts'; delays
 * Backoff.ts'; sockets Socket.ts'. Public types and `make` are in Client.ts.
 */
import { Result, Schema } from "effect"
import { splitMessage } from "../protocol/EventFrame.ts"
import { type ErrorFrame, ServerFrame, type Welcome } from "../protocol/Frames.ts"
import * as MessagePack from "../protocol/MessagePack.ts"
import type { Codec } from "../protocol/Negotiation.ts"
import type { CommandName, CommandPayload, CommandResult, EventName, VersionDef } from "../protocol/Protocol.ts"
import { fromSchemaError } from "../protocol/SchemaProblem.ts"
import type { ReplyDecoder } from "./Commands.ts"
import { ConnectionCore, now, type StateListener } from "./ConnectionCore.ts"
import {
  type ClientIssue,
  CommandRejected,
  Disconnected,
  ProtocolMismatch,
  ProtocolViolation,
  ServerError,
  type TerminalError
} from "./errors.ts"
import { addToSet, type ErasedEventHandler, type ErasedHandler } from "./Subscription.ts"
import type {
  Client,
  ClientState,
  CommandOptions,
  EventHandler,
  PresenceMember,
  ResetNotice,
  SubscribeOptions,
  Subscription,
  WelcomeInfo
} from "./types.ts"

const decodeServerFrame = Schema.decodeUnknownResult(ServerFrame)

export class Connection<V extends VersionDef> extends ConnectionCore<V> implements Client<V> {
  // ---- the Client interface ----------------------------------------------------------------------------------

  get state(): ClientState {
    return this.current
  }

  get welcome(): WelcomeInfo | undefined {
    return this.welcomeInfo
  }

  get error(): TerminalError | undefined {
    return this.terminal
  }

  onState = (listener: StateListener) => addToSet(this.stateListeners, listener)

  on = <K extends EventName<V>>(event: K, handler: EventHandler<V, K>) =>
    this.channels.on(event, handler as unknown as ErasedHandler)

  onReset = (listener: (reset: ResetNotice) => void | PromiseLike<void>) => this.channels.onReset(listener)

  onError = (listener: (issue: ClientIssue) => void) => addToSet(this.errorListeners, listener)

  position = (channel: string) => this.channels.position(channel)

  subscribe = (channel: string, options: SubscribeOptions<V> = {}): Subscription<V> =>
    this.channels.subscribe(channel, {
      since: options.since,
      fromStart: options.fromStart,
      onEvent: options.onEvent as ErasedEventHandler | undefined,
      onReset: options.onReset
    }) as unknown as Subscription<V>

  command = <K extends CommandName<V>>(
    name: K,
    payload: CommandPayload<V, K>,
    options: CommandOptions = {}
  ): Promise<CommandResult<V, K>> => {
    if (this.current === "closed") {
      return Promise.reject(new Disconnected({ reason: this.terminal?.message ?? "client closed" }))
    }
    const encoded = this.codec.encodeCommand(name, payload, this.version)
    if (Result.isFailure(encoded)) {
      const p = encoded.failure
      return Promise.reject(
        new CommandRejected({
          command: name,
          code: p.code === "unknown_command" ? "unknown_command" : "invalid_payload",
          message: p.message,
          path: p.path
        })
      )
    }
    const json = encoded.success
    // the same checks passed for JSON, so encoding with raw bytes succeeds too (else JSON's form is sent)
    const payloadFor = (wire: Codec) => {
      if (wire === "json") return json
      const raw = this.codec.encodeCommand(name, payload, this.version, wire)
      return Result.isSuccess(raw) ? raw.success : json
    }
    return this.commands.issue(name, payloadFor, this.replyDecoder(name), {
      timeoutMs: options.timeoutMs ?? this.options.commandTimeoutMs,
      signal: options.signal
    }) as Promise<CommandResult<V, K>>
  }

  presence = (channel: string, options: CommandOptions = {}): Promise<ReadonlyArray<PresenceMember>> => {
    if (this.current === "closed") {
      return Promise.reject(new Disconnected({ reason: this.terminal?.message ?? "client closed" }))
    }
    return this.commands.request(
      "presence",
      (id) => ({ type: "presence", id, channel }),
      (reply) => ({ ok: true, value: reply.result }),
      { timeoutMs: options.timeoutMs ?? this.options.commandTimeoutMs, signal: options.signal }
    ) as Promise<ReadonlyArray<PresenceMember>>
  }

  ready = (): Promise<WelcomeInfo> => {
    if (this.current === "open" && this.welcomeInfo !== undefined) return Promise.resolve(this.welcomeInfo)
    if (this.current === "closed") return Promise.reject(this.terminal ?? new Disconnected({ reason: "client closed" }))
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }))
  }

  close = (): void => {
    if (this.current === "closed") return
    this.channels.flushAcks()
    this.terminate(undefined)
  }

  // ---- inbound -----------------------------------------------------------------------------------------------

  protected onMessage(data: string | Uint8Array): void {
    this.lastMessageAt = now()
    if (typeof data !== "string") return this.onBinaryMessage(data)
    for (const line of splitMessage(data)) {
      if (line.length === 0) continue
      let json: unknown
      try {
        json = JSON.parse(line)
      } catch {
        this.issue(
          new ProtocolViolation({
            message: `the server sent a frame that is not JSON: ${line.slice(0, 100)}`,
            path: []
          })
        )
        continue
      }
      if (!this.onValue(json)) return
    }
  }

  /** MessagePack frames, back to back in one binary message. */
  private onBinaryMessage(bytes: Uint8Array): void {
    let values: ReadonlyArray<unknown>
    try {
      values = MessagePack.decodeAll(bytes)
    } catch {
      this.issue(new ProtocolViolation({ message: "the server sent a message that is not MessagePack", path: [] }))
      return
    }
    for (const value of values) if (!this.onValue(value)) return
  }

  /** One parsed frame; false once the connection it came on is gone. */
  private onValue(value: unknown): boolean {
    if (Array.isArray(value)) return this.onCompactEvent(value)
    const decoded = decodeServerFrame(value)
    if (Result.isFailure(decoded)) {
      this.issue(new ProtocolViolation(fromSchemaError(decoded.failure)))
      return true
    }
    this.onFrame(decoded.success)
    // A handler may have closed the client, or a frame ended this connection.
    return !(this.current === "closed" || this.socket === undefined)
  }

  /** An event in the compact envelope; false once the connection it came on is gone. */
  private onCompactEvent(value: ReadonlyArray<unknown>): boolean {
    const frame = this.compactEvents.expand(value)
    if (typeof frame === "string") this.issue(new ProtocolViolation({ message: frame, path: [] }))
    else if (this.welcomed) this.channels.event(frame)
    return !(this.current === "closed" || this.socket === undefined)
  }

  private onFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case "welcome":
        return this.onWelcome(frame)
      case "ping":
        return this.send({ type: "pong" })
      case "error":
        return this.onErrorFrame(frame)
      case "goaway":
        this.goawayAfterMs = frame.reconnectAfterMs
        return
      case "session_update":
        if (frame.status === "expiring_soon") this.refreshToken()
        return
      case "pong":
        return
    }
    if (!this.welcomed) return
    switch (frame.type) {
      case "event":
        return this.channels.event(frame)
      case "alias":
        return this.compactEvents.announce(frame)
      case "subscribed":
        return this.channels.subscribed(frame)
      case "reset":
        return this.channels.reset(frame)
      case "reply":
        return this.commands.reply(frame.id, frame)
      case "presence":
        return this.commands.reply(frame.id, { ok: true, result: frame.members })
      case "unsubscribed":
        return
    }
  }

  private onWelcome(frame: typeof Welcome.Type): void {
    if (frame.protocol !== this.protocol || frame.version !== this.version) {
      this.terminate(
        new ProtocolMismatch({
          protocol: this.protocol,
          version: this.version,
          supported: frame.protocol === this.protocol ? [frame.version] : [],
          message: `offered ${this.offered}, the server welcomed ${frame.protocol} v${frame.version}`
        })
      )
      return
    }
    const { type: _, ...info } = frame
    this.welcomeInfo = info
    this.session = frame.session
    this.welcomed = true
    this.everOpened = true
    this.authRetried = false
    this.backoff.reset()
    this.armWatchdog(frame.heartbeatMs > 0 ? 2 * frame.heartbeatMs + this.heartbeatSlackMs : 0)
    this.channels.welcomed()
    this.commands.sendQueued()
    this.setState("open")
    const waiters = this.readyWaiters
    this.readyWaiters = []
    for (const w of waiters) w.resolve(info)
  }

  private onErrorFrame(frame: ErrorFrame): void {
    const path = frame.path ?? []
    if (
      frame.id !== undefined &&
      this.commands.rejected(frame.id, {
        code: frame.code,
        message: frame.message,
        path,
        retryAfterMs: frame.retryAfterMs
      })
    ) {
      return
    }
    if (frame.code === "auth_failed") {
      // The close (4401) that follows decides what happens; keep the server's words for Unauthorized.
      this.authMessage = frame.message
      return
    }
    const error = new ServerError({
      code: frame.code,
      message: frame.message,
      ...(frame.channel !== undefined ? { channel: frame.channel } : {})
    })
    if (frame.channel !== undefined) this.channels.refused(frame.channel, error)
    this.issue(error)
  }

  private refreshToken(): void {
    if (typeof this.options.token !== "function") return
    const id = this.conn
    // A failed refresh is left to the server: it closes with 4403 and the reconnect asks the getter again.
    this.resolveToken().then(
      (token) => {
        if (id === this.conn && this.welcomed && token !== undefined) this.send({ type: "authenticate", token })
      },
      () => {}
    )
  }

  private replyDecoder(name: string): ReplyDecoder {
    return (reply) => {
      const decoded = this.codec.decodeReply(name, reply, this.version)
      if (Result.isFailure(decoded)) {
        const p = decoded.failure
        return new ProtocolViolation({ message: `reply to "${name}": ${p.message}`, path: p.path })
      }
      return decoded.success.ok
        ? { ok: true, value: decoded.success.value }
        : { ok: false, error: decoded.success.value }
    }
  }
}
