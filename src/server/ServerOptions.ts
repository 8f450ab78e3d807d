/**
 * What a server is made from: its protocol and handlers, authentication, where it listens (its own HTTP server or
 * yours), the WebSocket path, the version of plain WebSockets, HTTP publishing, presence, limits and timing
 * (Options.ts), tracing.
 */
import type { Server as HttpServer } from "node:http"
import type { AnyProtocol } from "../protocol/Protocol.ts"
import type { AuthOptions } from "./auth/index.ts"
import type { Handlers } from "./Handlers.ts"
import type { Limits, Timing } from "./Options.ts"
import type { PresenceOptions } from "./presence/index.ts"

export interface ServerOptions<P extends AnyProtocol, R> {
  readonly protocol: P
  readonly handlers: Handlers<P, R>
  readonly auth: AuthOptions
  /** Interface to bind (default 127.0.0.1). Ignored with `server`. */
  readonly host?: string
  /** Port (default 4000; 0 picks a free one). Ignored with `server`. */
  readonly port?: number
  /**
   * Accept queue length (default 4096; the kernel caps it at net.core.somaxconn). Node's own default of 511
   * overflows when thousands of clients reconnect at once, and every overflow costs a client a 1 s or 3 s SYN
   * retransmit. Ignored with `server`.
   */
  readonly backlog?: number
  /**
   * Attach to an existing Node HTTP server instead of creating one; you listen and close it. tidings then takes the
   * WebSocket upgrades of its `path` only and leaves the others to the server's other `upgrade` listeners (with
   * none, it answers them 404), and answers its HTTP routes, leaving other requests to yours.
   */
  readonly server?: HttpServer
  /** WebSocket path (default "/ws"). */
  readonly path?: string
  /**
   * The protocol version of a plain WebSocket, one that offers no subprotocol (default the newest); it can ask for
   * another with `?v=N`. `welcome` says which it got.
   */
  readonly plainVersion?: number
  /**
   * Record spans (connections, commands, publishes, fan-out; Tracing.ts) with the tracer in the context, such as
   * `Tracing.layerOtlp(...)`. Default false: no span is made.
   */
  readonly traces?: boolean
  /** Key for `POST /v1/channels/:channel/events` (`Authorization: Bearer <key>`); JWTs with publish rights work too. */
  readonly apiKey?: string
  /**
   * Origins whose browser pages may use the HTTP routes (SSE, presence, publish) from another origin: exact
   * origins (`https://app.example.com`) or "*" for any. Default none: same-origin pages only.
   */
  readonly corsOrigins?: ReadonlyArray<string>
  /** Largest body accepted by the HTTP publish endpoint (default 1 MiB). */
  readonly maxPublishBodyBytes?: number
  /**
   * Presence (opt-in): who is subscribed to the channels its rules name, seen from every node, queried with a
   * `presence` frame or `GET /v1/channels/:channel/presence`, announced with the rules' join and leave events.
   */
  readonly presence?: PresenceOptions<P>
  readonly limits?: Partial<Limits>
  readonly timing?: Partial<Timing>
}
