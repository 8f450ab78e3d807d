/**
 * The typed client's public types: its state, events and their positions, options, subscriptions and the Client
 * interface. Kept apart from Client.ts (which makes a client) so that the modules implementing it import the types
 * without importing the module that imports them.
 */
import type { PresenceMember, ResetReason, Welcome } from "../protocol/Frames.ts"
import type { Codec } from "../protocol/Negotiation.ts"
import type { Position } from "../protocol/Position.ts"
import type {
  CommandName,
  CommandPayload,
  CommandResult,
  EventData,
  EventName,
  VersionDef
} from "../protocol/Protocol.ts"
import type { AckOptions } from "./AckBatcher.ts"
import type { BackoffOptions } from "./Backoff.ts"
import type { ClientIssue, TerminalError } from "./errors.ts"
import type { SocketFactory } from "./Socket.ts"

export type { PresenceMember } from "../protocol/Frames.ts"

/**
 * - `connecting`: before the first welcome (including retries of a first connection that failed).
 * - `open`: welcomed; subscriptions are being (or have been) restored.
 * - `reconnecting`: a connection that was open was lost; waiting for the backoff or connecting again.
 * - `closed`: for good, after `close()` or a terminal error (see `Client.error`).
 */
export type ClientState = "connecting" | "open" | "reconnecting" | "closed"

/** Where an event sits in its channel's log. */
export interface EventMeta {
  readonly channel: string
  readonly epoch: string
  readonly offset: number
  /** Server time of the publish, epoch milliseconds. */
  readonly time: number
}

/** An event of version `V` with its position, discriminated by `event`. */
export type ReceivedEvent<V extends VersionDef> = {
  readonly [K in EventName<V>]: {
    readonly _tag: "Event"
    readonly event: K
    readonly data: EventData<V, K>
    readonly meta: EventMeta
  }
}[EventName<V>]

/**
 * The channel's history could not be resumed from the client's position: events between `previous` and
 * `position` are lost to this client. Rebuild any state derived from the channel; delivery continues after
 * `position`.
 */
export interface ResetNotice {
  readonly _tag: "Reset"
  readonly channel: string
  readonly reason: ResetReason
  readonly position: Position
  readonly previous: Position | undefined
}

/** The `subscribed` frame: the subscription is live after replaying `replayed` missed events. */
export interface SubscribedInfo {
  readonly channel: string
  readonly position: Position
  readonly recovered: boolean
  readonly replayed: number
}

export type WelcomeInfo = Omit<typeof Welcome.Type, "type">

/** A handler may return a promise: later events of the same channel wait for it, and so does the ack. */
export type EventHandler<V extends VersionDef, K extends EventName<V>> = (
  data: EventData<V, K>,
  meta: EventMeta
) => void | PromiseLike<void>

/** A token, or a getter called before every connection and when the server says the session expires soon. */
export type TokenSource = string | (() => string | PromiseLike<string>)

export interface ClientOptions<N extends number> {
  /** For example `ws://127.0.0.1:4000/ws`. */
  readonly url: string
  /** The protocol version this app speaks; offered as the subprotocol `tidings.<name>.v<N>.<codec>`. */
  readonly version: N
  /**
   * The wire codec: `json` (text frames, the default) or `msgpack` (binary MessagePack frames, Bytes fields as raw
   * bytes). `msgpack` offers `json` too, behind it, so a server without MessagePack still connects (over JSON).
   */
  readonly codec?: Codec | undefined
  /**
   * The compact envelope (default true): events arrive as `[alias, offset, event, data, time]` and the channel's name
   * and epoch once per subscription, in an `alias` frame — an event frame with a 100-byte payload is about half the
   * size. The self-describing form is offered behind it, so a server without the compact envelope still connects.
   */
  readonly compact?: boolean | undefined
  readonly token?: TokenSource | undefined
  readonly backoff?: BackoffOptions | undefined
  readonly ack?: AckOptions | undefined
  /** Added to twice the server's heartbeat interval before a silent connection counts as dead. Default 1 000 ms. */
  readonly heartbeatSlackMs?: number | undefined
  /** Longest wait from opening a socket to the server's welcome. Default 10 000 ms. */
  readonly connectTimeoutMs?: number | undefined
  /** Default timeout of every command; none unless set. */
  readonly commandTimeoutMs?: number | undefined
  /** The WebSocket implementation. Default `globalThis.WebSocket` (node.ts defaults to `ws`). */
  readonly socket?: SocketFactory | undefined
  /** Random numbers in [0, 1) for jitter; inject for deterministic tests. Default Math.random. */
  readonly random?: (() => number) | undefined
}

export interface CommandOptions {
  /** Fails the command with CommandTimeout after this long without a reply. */
  readonly timeoutMs?: number | undefined
  /** Aborting rejects the command with the signal's reason (the server may still run it). */
  readonly signal?: AbortSignal | undefined
}

export interface SubscribeOptions<V extends VersionDef> {
  /** Resume from this position (for example one the app persisted), if the client has none of its own. */
  readonly since?: Position | undefined
  /**
   * With no position (neither `since` nor one the client holds), replay everything the channel still retains
   * before going live — for a run's channel, its whole history so far. Default: live from now.
   */
  readonly fromStart?: boolean | undefined
  readonly onEvent?: ((event: ReceivedEvent<V>) => void | PromiseLike<void>) | undefined
  readonly onReset?: ((reset: ResetNotice) => void | PromiseLike<void>) | undefined
}

/** One interest in a channel. Several may share a channel; the wire subscription ends with the last one. */
export interface Subscription<V extends VersionDef> {
  readonly channel: string
  /** The last position accepted on this channel. */
  readonly position: () => Position | undefined
  readonly on: <K extends EventName<V>>(event: K, handler: EventHandler<V, K>) => () => void
  readonly onEvent: (handler: (event: ReceivedEvent<V>) => void | PromiseLike<void>) => () => void
  readonly onReset: (handler: (reset: ResetNotice) => void | PromiseLike<void>) => () => void
  /**
   * Resolves once the subscription is live; rejects if the server refuses it (forbidden, too many subscriptions)
   * or the client closes. While the server answers `unavailable` (its broker is down) the client asks again,
   * 0.5 to 5 s apart, and each refusal is reported to `onError`.
   */
  readonly ready: () => Promise<SubscribedInfo>
  readonly unsubscribe: () => void
}

export interface Client<V extends VersionDef> {
  readonly protocol: string
  readonly version: V["version"]
  readonly state: ClientState
  /** The last welcome (session id, user, heartbeat, limits). */
  readonly welcome: WelcomeInfo | undefined
  /** Why the client closed, when it was not `close()`. */
  readonly error: TerminalError | undefined
  readonly onState: (listener: (state: ClientState, error: TerminalError | undefined) => void) => () => void
  /**
   * Typed handler for one event, on every channel this client receives — including channels the server
   * delivers without a subscribe of ours (deduplicated and acked, but not resubscribed by the client).
   */
  readonly on: <K extends EventName<V>>(event: K, handler: EventHandler<V, K>) => () => void
  /** Resets on every channel. */
  readonly onReset: (listener: (reset: ResetNotice) => void | PromiseLike<void>) => () => void
  /** Problems the client reports and survives; without a listener they go to console.warn. */
  readonly onError: (listener: (issue: ClientIssue) => void) => () => void
  readonly subscribe: (channel: string, options?: SubscribeOptions<V>) => Subscription<V>
  /** The last position accepted on `channel`, to persist and pass back as `since` later. */
  readonly position: (channel: string) => Position | undefined
  /**
   * Sends a command and resolves with its typed result. Rejects with CommandFailed (the typed error),
   * CommandRejected (an error frame, or a payload that fails the schema before sending), CommandTimeout,
   * Disconnected (the connection dropped before the reply) or ProtocolViolation (an unreadable reply).
   * Commands are never retried automatically: after Disconnected the server may or may not have run it.
   * A command issued while (re)connecting is sent once the connection is open; `close()` fails every
   * pending command with Disconnected.
   */
  readonly command: <K extends CommandName<V>>(
    name: K,
    payload: CommandPayload<V, K>,
    options?: CommandOptions
  ) => Promise<CommandResult<V, K>>
  /**
   * Who is subscribed to `channel` (on every node), where the server has presence for it. Rejects like a command:
   * CommandRejected `forbidden` for a channel the token may not read or that has no presence, `unavailable` when
   * the broker does not answer.
   */
  readonly presence: (channel: string, options?: CommandOptions) => Promise<ReadonlyArray<PresenceMember>>
  /** Resolves when the client is open; rejects if it closes first. */
  readonly ready: () => Promise<WelcomeInfo>
  /** Flushes acks, closes the socket, fails pending commands with Disconnected. No reconnect afterwards. */
  readonly close: () => void
}
