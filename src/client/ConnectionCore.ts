import { CloseCodes, isResumable } from "../protocol/CloseCodes.ts"
import type { ClientFrame } from "../protocol/Frames.ts"
import * as MessagePack from "../protocol/MessagePack.ts"
import { type Codec, parseOffer, subprotocol } from "../protocol/Negotiation.ts"
import type { AnyProtocol, VersionDef } from "../protocol/Protocol.ts"
import { ProtocolCodec } from "../protocol/ProtocolCodec.ts"
import * as Backoff from "./Backoff.ts"
import { Channels } from "./Channels.ts"
import { Commands, type FrameBuilder } from "./Commands.ts"
import { CompactEvents } from "./CompactEvents.ts"
import {
  type ClientIssue,
  Disconnected,
  ProtocolMismatch,
  ReconnectExhausted,
  type TerminalError,
  Unauthorized
} from "./errors.ts"
import * as Socket from "./Socket.ts"
import type { ClientOptions, ClientState, WelcomeInfo } from "./types.ts"

/** A monotonic clock (browsers and Node alike), so a wall-clock jump does not fake a dead connection. */
export const now = (): number => globalThis.performance.now()

export type StateListener = (state: ClientState, error: TerminalError | undefined) => void

export abstract class ConnectionCore<V extends VersionDef> {
  readonly protocol: string
  readonly version: V["version"]

  protected readonly codec: ProtocolCodec
  /** The preferred subprotocol, for messages. */
  protected readonly offered: string
  /** Every subprotocol offered, preferred first: MessagePack offers JSON behind it for servers without it. */
  protected readonly offers: ReadonlyArray<string>
  /** The wire codec of the current connection, from the subprotocol the server selected. */
  protected wire: Codec = "json"
  /** The current connection's compact-envelope aliases (empty when it speaks the self-describing envelope). */
  protected readonly compactEvents = new CompactEvents()
  protected readonly factory: Socket.SocketFactory
  protected readonly backoff: Backoff.Backoff
  protected readonly channels: Channels
  protected readonly commands: Commands
  protected readonly random: () => number
  protected readonly heartbeatSlackMs: number
  protected readonly connectTimeoutMs: number

  protected readonly stateListeners = new Set<StateListener>()
  protected readonly errorListeners = new Set<(issue: ClientIssue) => void>()
  protected readyWaiters: Array<{ resolve: (w: WelcomeInfo) => void; reject: (e: unknown) => void }> = []

  protected current: ClientState = "connecting"
  protected terminal: TerminalError | undefined
  protected everOpened = false
  /** Identifies the current connection attempt; callbacks of older ones are ignored. */
  protected conn = 0
  protected socket: Socket.Socket | undefined
  protected welcomed = false
  protected session: string | undefined
  protected welcomeInfo: WelcomeInfo | undefined
  protected goawayAfterMs: number | undefined
  protected authRetried = false
  protected authMessage: string | undefined
  protected reconnectTimer: ReturnType<typeof setTimeout> | undefined
  protected watchdog: ReturnType<typeof setTimeout> | undefined
  protected watchdogMs = 0
  protected lastMessageAt = 0

  constructor(
    protocol: AnyProtocol,
    protected readonly options: ClientOptions<number>
  ) {
    this.codec = new ProtocolCodec(protocol)
    if (!this.codec.supports(options.version)) {
      throw new Error(`protocol ${protocol.name} has no version ${options.version}`)
    }
    this.protocol = protocol.name
    this.version = options.version as V["version"]
    const preferred = options.codec ?? "json"
    const compact = options.compact ?? true
    this.offered = subprotocol(protocol.name, options.version, preferred, compact)
    // behind the preferred form, what older servers speak: the self-describing envelope, then JSON
    const fallbacks = [...(compact ? [preferred] : []), ...(preferred === "json" ? [] : ["json" as const])]
    this.offers = [this.offered, ...fallbacks.map((codec) => subprotocol(protocol.name, options.version, codec))]
    this.factory = options.socket ?? Socket.global()
    this.random = options.random ?? Math.random
    this.backoff = Backoff.make(options.backoff, this.random)
    this.heartbeatSlackMs = options.heartbeatSlackMs ?? 1_000
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000
    this.commands = new Commands((frame) => this.sendBuilt(frame))
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

  // ---- connecting --------------------------------------------------------------------------------------------

  protected connect(): void {
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

  protected resolveToken(): Promise<string | undefined> {
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

  protected open(id: number, token: string | undefined): void {
    const guard =
      <A extends Array<unknown>>(f: (...args: A) => void) =>
      (...args: A) => {
        if (id === this.conn && this.current !== "closed") f(...args)
      }
    try {
      this.socket = this.factory(this.options.url, this.offers, {
        onOpen: guard((protocol: string) => this.onOpen(protocol, token)),
        onMessage: guard((data: string | Uint8Array) => this.onMessage(data)),
        onClose: guard((code: number, reason: string) => this.lost(code, reason)),
        onRefused: guard((status: number, body: string) => this.onRefused(status, body))
      })
    } catch (cause) {
      this.lost(1006, `could not open a socket: ${String(cause)}`)
      return
    }
    this.armWatchdog(this.connectTimeoutMs)
  }

  protected onOpen(protocol: string, token: string | undefined): void {
    if (!this.offers.includes(protocol)) {
      this.terminate(
        new ProtocolMismatch({
          protocol: this.protocol,
          version: this.version,
          supported: [],
          message: `offered subprotocol ${this.offers.join(", ")}, the server selected "${protocol}"`
        })
      )
      return
    }
    const selected = parseOffer(protocol)
    this.wire = selected?.codec === "msgpack" ? "msgpack" : "json"
    this.compactEvents.clear()
    this.send({
      type: "authenticate",
      ...(token !== undefined ? { token } : {}),
      ...(this.session !== undefined ? { session: this.session } : {})
    })
  }

  protected onRefused(status: number, body: string): void {
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
  protected lost(code: number, reason: string): void {
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

  protected scheduleReconnect(delayMs: number): void {
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer)
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined
      if (this.current !== "closed") this.connect()
    }, delayMs)
  }

  /** Forgets the current socket and its watchdog. */
  protected detach(): void {
    if (this.watchdog !== undefined) clearTimeout(this.watchdog)
    this.watchdog = undefined
    this.socket = undefined
  }

  protected terminate(error: TerminalError | undefined): void {
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

  protected setState(state: ClientState): void {
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
  protected armWatchdog(ms: number): void {
    if (this.watchdog !== undefined) clearTimeout(this.watchdog)
    this.watchdog = undefined
    this.watchdogMs = ms
    this.lastMessageAt = now()
    if (ms > 0) this.watchdog = setTimeout(this.checkWatchdog, ms)
  }

  protected readonly checkWatchdog = (): void => {
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

  // ---- outbound ----------------------------------------------------------------------------------------------

  protected send(frame: ClientFrame): void {
    this.socket?.send(this.encode(frame))
  }

  /** A frame in the current connection's codec: JSON text, or MessagePack bytes. */
  private encode(frame: object): string | Uint8Array {
    return this.wire === "msgpack" ? MessagePack.encode(frame) : JSON.stringify(frame)
  }

  /** For commands: sends only on a welcomed connection, built for its codec. */
  protected sendBuilt(frame: FrameBuilder): boolean {
    if (!this.welcomed || this.socket === undefined) return false
    this.socket.send(this.encode(frame(this.wire)))
    return true
  }

  protected issue(issue: ClientIssue): void {
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

  /** A message from the server (the connection it came on is the current one): JSON text or MessagePack bytes. */
  protected abstract onMessage(data: string | Uint8Array): void
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
