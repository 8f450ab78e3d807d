/**
 * The client's connection lifecycle behind the Client interface: open a socket offering the version's
 * subprotocol, authenticate (with the previous session id), route server frames, answer pings, watch for a
 * silent server, refresh the token in band, and on a lost connection decide by close code whether to
 * reconnect (with backoff, or after goaway's delay) or to stop with a terminal error.
 *
 * Channels, positions, delivery and acks are Channels.ts'; in-flight commands Commands.ts'; delays
 * Backoff.ts'; sockets Socket.ts'. Public types and `make` are in Client.ts.
 */
import { Result, Schema } from "effect"
import { CloseCodes, isResumable } from "../protocol/CloseCodes.ts"
import { splitMessage } from "../protocol/EventFrame.ts"
import { type ClientFrame, type ErrorFrame, ServerFrame, type Welcome } from "../protocol/Frames.ts"
import { subprotocol } from "../protocol/Negotiation.ts"
import type {
  AnyProtocol,
  CommandName,
  CommandPayload,
  CommandResult,
  EventName,
  VersionDef
} from "../protocol/Protocol.ts"
import { ProtocolCodec } from "../protocol/ProtocolCodec.ts"
import { fromSchemaError } from "../protocol/SchemaProblem.ts"
import * as Backoff from "./Backoff.ts"
import { Channels } from "./Channels.ts"
import { Commands, type ReplyDecoder } from "./Commands.ts"
import {
  type ClientIssue,
  CommandRejected,
  Disconnected,
  ProtocolMismatch,
  ProtocolViolation,
  ReconnectExhausted,
  ServerError,
  type TerminalError,
  Unauthorized
} from "./errors.ts"
import * as Socket from "./Socket.ts"
import { addToSet, type ErasedEventHandler, type ErasedHandler } from "./Subscription.ts"
import type {
  Client,
  ClientOptions,
  ClientState,
  CommandOptions,
  EventHandler,
  ResetNotice,
  SubscribeOptions,
  Subscription,
  WelcomeInfo
} from "./types.ts"

const decodeServerFrame = Schema.decodeUnknownResult(ServerFrame)

/** A monotonic clock (browsers and Node alike), so a wall-clock jump does not fake a dead connection. */
const now = (): number => globalThis.performance.now()

type StateListener = (state: ClientState, error: TerminalError | undefined) => void

export class Connection<V extends VersionDef> implements Client<V> {
  readonly protocol: string
  readonly version: V["version"]

  private readonly codec: ProtocolCodec
  private readonly offered: string
  private readonly factory: Socket.SocketFactory
  private readonly backoff: Backoff.Backoff
  private readonly channels: Channels
  private readonly commands: Commands
  private readonly random: () => number
  private readonly heartbeatSlackMs: number
  private readonly connectTimeoutMs: number

  private readonly stateListeners = new Set<StateListener>()
  private readonly errorListeners = new Set<(issue: ClientIssue) => void>()
  private readyWaiters: Array<{ resolve: (w: WelcomeInfo) => void; reject: (e: unknown) => void }> = []

  private current: ClientState = "connecting"
  private terminal: TerminalError | undefined
  private everOpened = false
  /** Identifies the current connection attempt; callbacks of older ones are ignored. */
  private conn = 0
  private socket: Socket.Socket | undefined
  private welcomed = false
  private session: string | undefined
  private welcomeInfo: WelcomeInfo | undefined
  private goawayAfterMs: number | undefined
  private authRetried = false
  private authMessage: string | undefined
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined
  private watchdog: ReturnType<typeof setTimeout> | undefined
  private watchdogMs = 0
  private lastMessageAt = 0

  constructor(
    protocol: AnyProtocol,
    private readonly options: ClientOptions<number>
  ) {
    this.codec = new ProtocolCodec(protocol)
    if (!this.codec.supports(options.version)) {
      throw new Error(`protocol ${protocol.name} has no version ${options.version}`)
    }
    this.protocol = protocol.name
    this.version = options.version as V["version"]
    this.offered = subprotocol(protocol.name, options.version)
    this.factory = options.socket ?? Socket.global()
    this.random = options.random ?? Math.random
    this.backoff = Backoff.make(options.backoff, this.random)
    this.heartbeatSlackMs = options.heartbeatSlackMs ?? 1_000
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000
    this.commands = new Commands((text) => this.sendText(text))
    this.channels = new Channels(
      {
        welcomed: () => this.welcomed,
        send: (frame) => this.send(frame),
        issue: (issue) => this.issue(issue),
        closedWith: () =>
          this.current === "closed" ? (this.terminal ?? new Disconnected({ reason: "client closed" })) : undefined
      },
      (event, data) => this.codec.decodeEvent(event, data, this.version),
      options.ack
    )
    this.connect()
  }

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
    return this.commands.issue(name, encoded.success, this.replyDecoder(name), {
      timeoutMs: options.timeoutMs ?? this.options.commandTimeoutMs,
      signal: options.signal
    }) as Promise<CommandResult<V, K>>
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

  // ---- connecting --------------------------------------------------------------------------------------------

  private connect(): void {
    const id = ++this.conn
    this.welcomed = false
    this.goawayAfterMs = undefined
    this.authMessage = undefined
    this.resolveToken().then(
      (token) => {
        if (id === this.conn && this.current !== "closed") this.open(id, token)
      },
      (cause: unknown) => {
        if (id === this.conn && this.current !== "closed") this.lost(1006, `token getter failed: ${String(cause)}`)
      }
    )
  }

  private resolveToken(): Promise<string | undefined> {
    const token = this.options.token
    // A getter that throws becomes a rejection, handled like a failed connection; one that never settles is
    // given up on after connectTimeoutMs, so the client keeps retrying instead of hanging in "connecting".
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no token within ${this.connectTimeoutMs} ms`)),
        this.connectTimeoutMs
      )
      Promise.resolve(typeof token === "function" ? token() : token).then(
        (value) => {
          clearTimeout(timer)
          resolve(value)
        },
        (error: unknown) => {
          clearTimeout(timer)
          reject(error)
        }
      )
    })
  }

  private open(id: number, token: string | undefined): void {
    const guard =
      <A extends Array<unknown>>(f: (...args: A) => void) =>
      (...args: A) => {
        if (id === this.conn && this.current !== "closed") f(...args)
      }
    try {
      this.socket = this.factory(this.options.url, [this.offered], {
        onOpen: guard((protocol: string) => this.onOpen(protocol, token)),
        onMessage: guard((text: string) => this.onMessage(text)),
        onClose: guard((code: number, reason: string) => this.lost(code, reason)),
        onRefused: guard((status: number, body: string) => this.onRefused(status, body))
      })
    } catch (cause) {
      this.lost(1006, `could not open a socket: ${String(cause)}`)
      return
    }
    this.armWatchdog(this.connectTimeoutMs)
  }

  private onOpen(protocol: string, token: string | undefined): void {
    if (protocol !== this.offered) {
      this.terminate(
        new ProtocolMismatch({
          protocol: this.protocol,
          version: this.version,
          supported: [],
          message: `offered subprotocol ${this.offered}, the server selected "${protocol}"`
        })
      )
      return
    }
    this.send({
      type: "authenticate",
      ...(token !== undefined ? { token } : {}),
      ...(this.session !== undefined ? { session: this.session } : {})
    })
  }

  private onRefused(status: number, body: string): void {
    this.detach()
    if (status === 400) {
      this.terminate(
        new ProtocolMismatch({
          protocol: this.protocol,
          version: this.version,
          supported: supportedVersions(body),
          message: `the server refused ${this.offered} (HTTP 400): ${body.slice(0, 500)}`
        })
      )
    } else if (status === 401 || status === 403) {
      this.authMessage = body.slice(0, 500) || `HTTP ${status}`
      this.lost(CloseCodes.unauthorized, this.authMessage)
    } else {
      this.lost(1006, `HTTP ${status} on upgrade`)
    }
  }

  // ---- losing a connection -----------------------------------------------------------------------------------

  /** The connection is gone (closed, refused, silent): fail sent commands, then reconnect or stop. */
  private lost(code: number, reason: string): void {
    this.detach()
    this.conn++
    const wasWelcomed = this.welcomed
    this.welcomed = false
    this.channels.lost()
    const why = `${code}${reason ? `: ${reason}` : ""}`
    this.commands.disconnected(`connection closed (${why})`)
    if (this.current === "closed") return

    if (code === CloseCodes.unauthorized) {
      if (typeof this.options.token === "function" && !this.authRetried) {
        this.authRetried = true
        this.setState(this.everOpened ? "reconnecting" : "connecting")
        this.scheduleReconnect(0)
        return
      }
      this.terminate(
        new Unauthorized({ message: this.authMessage ?? (reason || "the server refused the credentials") })
      )
      return
    }
    if (!isResumable(code)) {
      this.terminate(new Disconnected({ reason: `the server closed the connection (${why})` }))
      return
    }
    let delay: number | undefined
    if (this.goawayAfterMs !== undefined && wasWelcomed) {
      const after = this.goawayAfterMs
      delay = after + Math.floor(this.random() * Math.max(after, this.options.backoff?.initialDelayMs ?? 250))
    } else {
      delay = this.backoff.next()
      if (delay === undefined) {
        this.terminate(new ReconnectExhausted({ attempts: this.backoff.attempts, lastCloseCode: code }))
        return
      }
    }
    this.setState(this.everOpened ? "reconnecting" : "connecting")
    this.scheduleReconnect(delay)
  }

  private scheduleReconnect(delayMs: number): void {
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer)
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined
      if (this.current !== "closed") this.connect()
    }, delayMs)
  }

  /** Forgets the current socket and its watchdog. */
  private detach(): void {
    if (this.watchdog !== undefined) clearTimeout(this.watchdog)
    this.watchdog = undefined
    this.socket = undefined
  }

  private terminate(error: TerminalError | undefined): void {
    if (this.current === "closed") return
    this.terminal = error
    this.conn++
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer)
    this.reconnectTimer = undefined
    const socket = this.socket
    this.detach()
    this.welcomed = false
    socket?.close(CloseCodes.normal, "client closed")
    const reason = error?.message ?? "client closed"
    this.commands.closed(reason)
    const failure = error ?? new Disconnected({ reason })
    this.channels.close(failure)
    const waiters = this.readyWaiters
    this.readyWaiters = []
    for (const w of waiters) w.reject(failure)
    this.setState("closed")
  }

  private setState(state: ClientState): void {
    if (this.current === state) return
    this.current = state
    for (const listener of [...this.stateListeners]) {
      try {
        listener(state, this.terminal)
      } catch (cause) {
        console.error("tidings/client: an onState listener threw", cause)
      }
    }
  }

  // ---- heartbeat watchdog ------------------------------------------------------------------------------------

  /** Considers the connection dead when no message arrives for `ms`. */
  private armWatchdog(ms: number): void {
    if (this.watchdog !== undefined) clearTimeout(this.watchdog)
    this.watchdog = undefined
    this.watchdogMs = ms
    this.lastMessageAt = now()
    if (ms > 0) this.watchdog = setTimeout(this.checkWatchdog, ms)
  }

  private readonly checkWatchdog = (): void => {
    this.watchdog = undefined
    const remaining = this.lastMessageAt + this.watchdogMs - now()
    if (remaining > 0) {
      this.watchdog = setTimeout(this.checkWatchdog, remaining)
      return
    }
    const socket = this.socket
    const reason = this.welcomed ? "no message from the server within two heartbeats" : "no welcome in time"
    this.detach()
    socket?.terminate(CloseCodes.heartbeatTimeout, reason)
    this.lost(CloseCodes.heartbeatTimeout, reason)
  }

  // ---- inbound -----------------------------------------------------------------------------------------------

  private onMessage(text: string): void {
    this.lastMessageAt = now()
    for (const line of splitMessage(text)) {
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
      const decoded = decodeServerFrame(json)
      if (Result.isFailure(decoded)) {
        this.issue(new ProtocolViolation(fromSchemaError(decoded.failure)))
        continue
      }
      this.onFrame(decoded.success)
      // A handler may have closed the client, or a frame ended this connection.
      if (this.current === "closed" || this.socket === undefined) return
    }
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
      case "subscribed":
        return this.channels.subscribed(frame)
      case "reset":
        return this.channels.reset(frame)
      case "reply":
        return this.commands.reply(frame.id, frame)
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

  // ---- outbound ----------------------------------------------------------------------------------------------

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

  private send(frame: ClientFrame): void {
    this.socket?.send(JSON.stringify(frame))
  }

  /** For commands: sends only on a welcomed connection. */
  private sendText(text: string): boolean {
    if (!this.welcomed || this.socket === undefined) return false
    this.socket.send(text)
    return true
  }

  private issue(issue: ClientIssue): void {
    if (this.errorListeners.size === 0) {
      console.warn(`tidings/client: ${issue._tag}: ${issue.message}`)
      return
    }
    for (const listener of [...this.errorListeners]) {
      try {
        listener(issue)
      } catch (cause) {
        console.error("tidings/client: an onError listener threw", cause)
      }
    }
  }
}

/** Reads the supported versions from a 400 body: JSON `{ supported: [1, 2] }` or text naming `v1`, `v2`. */
const supportedVersions = (body: string): ReadonlyArray<number> => {
  try {
    const json: unknown = JSON.parse(body)
    if (typeof json === "object" && json !== null) {
      for (const key of ["supported", "versions"]) {
        const value = (json as Record<string, unknown>)[key]
        if (Array.isArray(value) && value.every((v) => typeof v === "number")) return value
      }
    }
  } catch {
    // not JSON: fall through to the text form
  }
  return [...new Set([...body.matchAll(/\bv(\d+)\b/g)].map((m) => Number(m[1])))]
}
