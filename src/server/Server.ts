/**
 * The tidings server as an Effect service and Layer: HTTP server (its own, or one you pass in), WebSocket
 * upgrades, connections, fan-out, heartbeat and graceful shutdown. Closing the Layer's scope shuts down
 * gracefully: no new upgrades, not ready, `goaway` to every client, outbound buffers flushed up to a deadline,
 * then close 1001. Application code publishes with `publish(protocol)` or the service's methods.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Clock, Effect, Exit, FiberSet, Layer, LogLevel, Option, References } from "effect"
import { WebSocketServer } from "ws"
import { Bridges } from "../bridges/Bridges.ts"
import { CloseCodes } from "../protocol/CloseCodes.ts"
import { isCommandUnavailable } from "../protocol/CommandUnavailable.ts"
import { CODECS, COMPACT, negotiate, parseHeader, subprotocol } from "../protocol/Negotiation.ts"
import type { AnyProtocol } from "../protocol/Protocol.ts"
import { ProtocolCodec } from "../protocol/ProtocolCodec.ts"
import { LocalRuns } from "../runs/LocalRuns.ts"
import { RunsStatus } from "../runs/RunsStatus.ts"
import * as Publisher from "../transports/Publisher.ts"
import { type CursorWrite, saveCursors, Transport, type TransportShape } from "../transports/Transport.ts"
import * as Auth from "./auth/index.ts"
import {
  AttemptLimiter,
  Connection,
  type ConnectionEnv,
  ConnectionSocket,
  credentials,
  pathOf,
  peerAddress,
  plainOptions,
  refuse
} from "./connection/index.ts"
import { Hub, SharedReads } from "./fanout/index.ts"
import type { Handlers } from "./Handlers.ts"
import { HttpRoutes, Metrics, Sse, TransportHealth } from "./http/index.ts"
import { defaultLimits, defaultTiming, type Limits, type Timing } from "./Options.ts"
import { type PresenceOptions, PresenceTracker, type TrackerEnv } from "./presence/index.ts"
import { onPort } from "./processes/Balancing.ts"
import { ProcessGroup } from "./processes/ProcessGroup.ts"
import { pooledRandom } from "./RandomPool.ts"
import type { ServerOptions } from "./ServerOptions.ts"
import { Stats } from "./Stats.ts"
import { TidingsServer } from "./TidingsServer.ts"
import * as Tracing from "./Tracing.ts"

export type { ServerOptions } from "./ServerOptions.ts"
export { publish, TidingsServer, type TidingsServerShape } from "./TidingsServer.ts"

/** Heartbeats and cursor saves are spread over this many slices of their interval. */
const TIMER_SLICES = 10
/** Cursor writes per transport call: a slice of 10,000 acking connections is 1,000, one Redis pipeline. */
const CURSOR_BATCH = 1000
/**
 * How often every connection's token expiry is checked (Connection.checkExpiry): warnings and closes come at most
 * this late.
 */
const EXPIRY_CHECK_MS = 250

/** A random id as one flat string (a UUID is assembled from pieces V8 keeps apart: ~0.6 KiB per connection). */
const newId = (bytes: number): string => pooledRandom(bytes).toString("base64url")

/**
 * A raw upgrade socket's error handler. A module-level function, not a closure: a closure created in the upgrade
 * handler would keep that handler's whole scope (the request, its headers, the head buffer) alive for as long
 * as the connection lives.
 */
function destroySocket(this: import("node:stream").Duplex): void {
  this.destroy()
}

export const make = <P extends AnyProtocol, R = never>(options: ServerOptions<P, R>) =>
  Effect.gen(function* () {
    const transport = yield* Transport
    /** Runs in this process (a gateway's RunClient or a worker's engine), when the application has them. */
    const runs = Option.getOrUndefined(yield* Effect.serviceOption(RunsStatus))
    /** Runs that end with this process (memory storage): stopped first at shutdown, while clients still listen. */
    const localRuns = Option.getOrUndefined(yield* Effect.serviceOption(LocalRuns))
    /** Bridges running in this process (src/bridges), when configured. */
    const bridges = Option.getOrUndefined(yield* Effect.serviceOption(Bridges))
    /** The node's other processes, when this is one of several (processes/): readiness and metrics cover them. */
    const group = Option.getOrUndefined(yield* Effect.serviceOption(ProcessGroup))
    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()
    const context = yield* Effect.context<R>()
    const fork = yield* FiberSet.makeRuntime<R>()
    const transportHealth = yield* TransportHealth.make(transport)
    const minimumLogLevel = yield* References.MinimumLogLevel
    const limits: Limits = {
      ...defaultLimits,
      // ws closes only what is far over the frame limit: by default 4 × maxFrameBytes, at least 256 KiB
      maxPayloadBytes: Math.max(defaultLimits.maxPayloadBytes, 4 * (options.limits?.maxFrameBytes ?? 0)),
      ...options.limits
    }
    const timing: Timing = { ...defaultTiming, ...options.timing }
    const codec = new ProtocolCodec(options.protocol)
    const plainVersion = options.plainVersion ?? Math.max(...codec.versions)
    if (!codec.versions.includes(plainVersion)) {
      return yield* Effect.die(
        new Error(`plainVersion ${plainVersion} is not a version of ${codec.name} (${codec.versions.join(", ")})`)
      )
    }
    const stats = new Stats()
    const auth = Auth.make(options.auth)
    const spans = options.traces ? new Tracing.Spans(yield* Effect.tracer) : undefined
    const publisher = Publisher.make(
      transport,
      codec,
      () => {
        stats.published++
      },
      spans !== undefined
    )
    const path = options.path ?? "/ws"
    const presence = yield* makePresence(options, transport, publisher, (effect) => fork(effect), now)
    const attempts = new AttemptLimiter(limits.connectionAttemptsPerSecondPerIp)
    const connections = new Set<Connection>()
    /** Connections per user, of those counted against their user's limit (a refused one never was). */
    const perUser = new Map<string, number>()
    let draining = false
    /** Connections accepted so far (assigns each its timer slice). */
    let connectionCount = 0

    const hub = new Hub(
      transport,
      codec,
      (entry, version, message) =>
        fork(
          Effect.logError(
            `cannot express ${entry.event} at ${entry.channel}:${entry.offset} in v${version}: ${message}`
          )
        ),
      spans
    )

    const handlers = options.handlers as unknown as Record<
      string,
      (payload: unknown, context: unknown) => Effect.Effect<unknown, unknown, R>
    >

    const env: ConnectionEnv = {
      codec,
      transport,
      read: SharedReads.make(transport),
      hub,
      auth,
      limits,
      timing,
      stats,
      now,
      fork: (effect) => fork(effect),
      debugLogs: LogLevel.isGreaterThanOrEqualTo("Debug", minimumLogLevel),
      spans,
      presence,
      newSession: () => newId(16),
      newConnectionId: () => newId(12),
      observeDeliveryLatency: (ms) => metrics.observeDeliveryLatency(ms),
      runCommand: (command, connection) =>
        Effect.suspend(() =>
          handlers[command.name]!(command.payload, {
            user: connection.identity?.user ?? null,
            session: connection.session,
            connection: connection.id,
            canRead: (channel: string) => connection.identity?.canRead(channel) ?? false,
            publish: publisher.publish
          })
        ).pipe(
          Effect.matchEffect({
            onSuccess: (result) => Effect.succeed({ name: command.name, ok: true as const, result }),
            // `unavailable` is the framework's answer, not the command's typed error (CommandUnavailable.ts)
            onFailure: (error) =>
              isCommandUnavailable(error)
                ? Effect.fail(error)
                : Effect.succeed({ name: command.name, ok: false as const, error })
          }),
          Effect.provideContext(context)
        ),
      onAuthenticated: (connection) => {
        const user = connection.user
        if (!user) return true
        const count = (perUser.get(user) ?? 0) + 1
        if (count > limits.maxConnectionsPerUser) return false
        perUser.set(user, count)
        connection.countedForUser = true
        return true
      },
      onClosed: (connection) => {
        if (!connections.delete(connection)) return
        stats.connectionsOpen--
        const user = connection.user
        if (user && connection.countedForUser) {
          connection.countedForUser = false
          const count = (perUser.get(user) ?? 1) - 1
          if (count <= 0) perUser.delete(user)
          else perUser.set(user, count)
        }
      }
    }

    // one string per version and codec, shared by every socket (ws keeps the chosen subprotocol per socket)
    const subprotocols = new Map(
      codec.versions.flatMap((v) =>
        CODECS.flatMap((c) =>
          [false, true].map((compact) => {
            const name = subprotocol(codec.name, v, c, compact)
            return [name, name] as const
          })
        )
      )
    )
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: limits.maxPayloadBytes,
      perMessageDeflate: false,
      clientTracking: false,
      // ConnectionSocket hands pings to the Connection, which answers them (no closure per socket)
      autoPong: false,
      WebSocket: ConnectionSocket,
      handleProtocols: (offered) => {
        const choice = negotiate(codec.name, codec.versions, [...offered])
        return choice === undefined
          ? false
          : (subprotocols.get(subprotocol(codec.name, choice.version, choice.codec, choice.compact)) ?? false)
      }
    })

    const onUpgrade = (request: IncomingMessage, socket: import("node:stream").Duplex, head: Buffer) => {
      // attached to an application's server, another path belongs to its other upgrade listeners, if it has any
      const ours = pathOf(request) === path
      if (!ours && options.server && http.listenerCount("upgrade") > 1) return
      socket.on("error", destroySocket)
      const ip = peerAddress(request.socket)
      const refused = (status: number, body: object, headers?: Record<string, string>) => {
        stats.bump(stats.upgradesRefused, status)
        refuse(socket, status, body, headers)
      }
      if (!ours) return refused(404, { error: "not_found", message: `WebSocket path is ${path}` })
      if (!attempts.allow(ip, now())) {
        return refused(
          429,
          { error: "too_many_attempts", message: "too many connection attempts; retry later" },
          {
            "Retry-After": "1"
          }
        )
      }
      if (draining)
        return refused(503, { error: "draining", message: "server is shutting down; connect to another node" })
      if (connections.size + sse.size >= limits.maxConnections) {
        return refused(503, {
          error: "server_full",
          message: `server is at its limit of ${limits.maxConnections} connections`
        })
      }
      const offered = parseHeader(request.headers["sec-websocket-protocol"])
      // a plain WebSocket offers no subprotocol: it speaks the version its URL names, or the server's default
      const plain = offered.length === 0 ? plainOptions(request) : undefined
      const choice = plain ? undefined : negotiate(codec.name, codec.versions, offered)
      const version = plain
        ? plain.version === null
          ? plainVersion
          : codec.versions.find((v) => String(v) === plain.version)
        : choice?.version
      if (version === undefined) {
        return refused(400, {
          error: "unsupported_version",
          message: plain
            ? `version ${JSON.stringify(plain.version)} is not spoken here; ask for one of ${codec.versions.join(", ")} with ?v=`
            : `no common protocol version; offer one of the supported subprotocols`,
          protocol: codec.name,
          supported: codec.versions.map((v) => subprotocol(codec.name, v)),
          // any supported subprotocol may end in one of these instead of `.json`, and then in `.compact`
          codecs: CODECS,
          envelopes: [COMPACT]
        })
      }
      const { token, session } = credentials(request)
      const accept = (identity: Auth.Identity | undefined) => {
        // the 101 response and the welcome frame leave in one write (one syscall, one segment) instead of two
        socket.cork()
        wss.handleUpgrade(request, socket, head, (client) => {
          const ws = client as ConnectionSocket
          // ws handles the socket's errors from here on (one listener less per connection)
          socket.off("error", destroySocket)
          const connection = new Connection(ws, ip, version, env)
          if (plain) connection.markPlain(plain.batch)
          if (choice?.codec === "msgpack") connection.markMsgpack()
          if (choice?.compact) connection.markCompact()
          connection.timerSlice = connectionCount++ % TIMER_SLICES
          connections.add(connection)
          stats.connectionsOpen++
          stats.connectionsOpened++
          connection.start(identity, session)
          connection.outbound.flush()
        })
        socket.uncork()
      }
      // without a token: a plain WebSocket on a server that allows anonymous access is welcomed at once; a typed
      // client authenticates with a frame (it may send a token that way)
      if (token === undefined) return accept(plain ? auth.anonymous : undefined)
      if (auth.verifySync) {
        const answer = auth.verifySync(token)
        if (answer instanceof Auth.AuthFailed) return refused(401, { error: answer.reason, message: answer.message })
        return accept(answer)
      }
      fork(
        auth.verify(token).pipe(
          Effect.match({
            onFailure: (error) => refused(401, { error: error.reason, message: error.message }),
            onSuccess: (identity) => accept(identity)
          })
        )
      )
    }

    const metrics = Metrics.make({
      runs,
      bridges,
      stats,
      channels: () => hub.channels,
      outboundBytes: () => {
        let total = 0
        for (const connection of connections) total += connection.outbound.buffered
        return total
      }
    })
    const sse: Sse.SseStreams = new Sse.SseStreams({
      transport,
      codec,
      auth,
      limits,
      timing,
      stats,
      run: (effect) => fork(effect),
      // a stream takes a connection's place in the limits
      admit: (user) => {
        if (draining)
          return { status: 503, error: "draining", message: "server is shutting down; connect to another node" }
        if (connections.size + sse.size >= limits.maxConnections) {
          return {
            status: 503,
            error: "server_full",
            message: `server is at its limit of ${limits.maxConnections} connections`
          }
        }
        if (user === null) return undefined
        const count = (perUser.get(user) ?? 0) + 1
        if (count > limits.maxConnectionsPerUser) {
          return { status: 429, error: "too_many_connections", message: "too many connections for this user" }
        }
        perUser.set(user, count)
        return undefined
      },
      released: (user) => {
        if (user === null) return
        const count = (perUser.get(user) ?? 1) - 1
        if (count <= 0) perUser.delete(user)
        else perUser.set(user, count)
      }
    })
    const httpHandler = HttpRoutes.make({
      sse,
      presence,
      ready: () => !draining,
      dependencies: () => [
        ...(runs ? [{ name: "runs", ...runs.readiness() }] : []),
        ...(bridges ? [{ name: "bridges", ...bridges.readiness() }] : []),
        ...(group ? [{ name: "processes", ...group.readiness() }] : [])
      ],
      transportHealth,
      metrics: group ? { ...metrics, render: () => group.renderMetrics(metrics.registry) } : metrics,
      codec,
      publisher,
      auth,
      apiKey: options.apiKey,
      corsOrigins: options.corsOrigins,
      maxBodyBytes: options.maxPublishBodyBytes ?? 1024 * 1024,
      run: (effect) => fork(effect)
    })

    const http = options.server ?? createServer()
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      if (!httpHandler(req, res) && !options.server) {
        res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "not_found" }))
      }
    }
    http.on("upgrade", onUpgrade)
    http.on("request", onRequest)

    const port = options.server
      ? ((options.server.address() as AddressInfo | null)?.port ?? 0)
      : yield* Effect.callback<number, Error>((resume) => {
          const onError = (error: Error) => resume(Effect.fail(error))
          http.once("error", onError)
          http.listen(
            {
              port: options.port ?? 4000,
              host: options.host ?? "127.0.0.1",
              backlog: options.backlog ?? 4096,
              // one process of several sharing the port through the kernel (processes/Balancing.ts; on port 0
              // node:cluster shares the primary's socket instead)
              ...(group && onPort(group.balancing, options.port ?? 4000) === "kernel" ? { reusePort: true } : {})
            },
            () => {
              http.off("error", onError)
              resume(Effect.succeed((http.address() as AddressInfo).port))
            }
          )
        })

    // Heartbeats and cursor saves run for every connection once per interval, but in TIMER_SLICES slices spread
    // over it (a connection belongs to one slice): pinging or saving for 10,000 connections in one go would stall
    // the event loop for tens of milliseconds at a time.
    const sliced = (intervalMs: number, each: (connections: Array<Connection>) => void) => {
      let tick = 0
      return setInterval(
        () => {
          const slice = tick++ % TIMER_SLICES
          const due: Array<Connection> = []
          for (const connection of connections) if (connection.timerSlice === slice) due.push(connection)
          if (due.length > 0) each(due)
        },
        Math.max(1, intervalMs / TIMER_SLICES)
      )
    }
    const heartbeat = sliced(timing.heartbeatMs, (due) => {
      for (const connection of due) connection.heartbeat()
    })
    // acked positions are saved once per cursorFlushMs: one timer for all connections, one fiber per slice and
    // one transport call per CURSOR_BATCH of its connections' writes (one broker round trip each, not one per ack),
    // all started at once and in order, so that a later save (the next flush, a closing connection's last one)
    // reaches the broker after an earlier one
    const cursorFlush = sliced(timing.cursorFlushMs, (due) => {
      const writes: Array<CursorWrite> = []
      for (const connection of due) connection.takeCursorWrites(writes)
      if (writes.length === 0) return
      const batches: Array<ReadonlyArray<CursorWrite>> = []
      for (let i = 0; i < writes.length; i += CURSOR_BATCH) batches.push(writes.slice(i, i + CURSOR_BATCH))
      fork(
        Effect.forEach(batches, (batch) => saveCursors(transport, batch).pipe(Effect.ignore), {
          concurrency: "unbounded",
          discard: true
        })
      )
    })

    // token expiry: one timer for all connections instead of two per connection
    const expiry = setInterval(() => {
      const at = now()
      for (const connection of connections) connection.checkExpiry(at)
    }, EXPIRY_CHECK_MS)

    yield* Effect.addFinalizer(() =>
      Effect.gen(function* () {
        // new upgrades get 503 "draining" until the HTTP server is closed
        draining = true
        presence?.stop()
        clearInterval(heartbeat)
        clearInterval(cursorFlush)
        clearInterval(expiry)
        // runs that end with the process say so first, so their final events reach connected clients
        if (localRuns) yield* localRuns.stopAll(timing.shutdownGraceMs)
        const goaway = { type: "goaway" as const, reason: "shutdown" as const, reconnectAfterMs: 100 }
        for (const connection of connections) connection.send(goaway)
        const deadline = now() + timing.shutdownGraceMs
        while (now() < deadline && [...connections].some((c) => !c.idle)) {
          yield* Effect.sleep("10 millis")
        }
        for (const connection of [...connections]) connection.close(CloseCodes.goingAway, "server shutting down")
        sse.closeAll()
        http.off("request", onRequest)
        http.off("upgrade", onUpgrade)
        if (!options.server) {
          yield* Effect.callback<void>((resume) => {
            http.close(() => resume(Effect.void))
            http.closeAllConnections()
          })
        }
        wss.close()
      })
    )

    const readyNow = () =>
      transportHealth.current().ok &&
      !draining &&
      (runs === undefined || runs.readiness().ready) &&
      (bridges === undefined || bridges.readiness().ready)
    if (group) yield* group.attach({ ready: readyNow, registry: metrics.registry, connections: () => connections.size })

    const host = options.host ?? "127.0.0.1"
    return TidingsServer.of({
      port,
      url: `ws://${host}:${port}${path}`,
      protocol: options.protocol,
      stats,
      metrics,
      publishUnknown: publisher.publish,
      publishEncoded: publisher.publishEncoded,
      publishPromise: (channel, event, data, opts) =>
        new Promise((resolve, reject) =>
          fork(publisher.publish(channel, event, data, opts)).addObserver((exit) =>
            Exit.isSuccess(exit) ? resolve(exit.value) : reject(Exit.isFailure(exit) ? exit.cause : exit)
          )
        ),
      connections: () => connections.size,
      ready: Effect.sync(readyNow)
    })
  })

/** The presence tracker when the options ask for presence; fails when the transport cannot hold it. */
const makePresence = <P extends AnyProtocol, R>(
  options: ServerOptions<P, R>,
  transport: TransportShape,
  publisher: Publisher.Publisher,
  fork: TrackerEnv["fork"],
  now: () => number
): Effect.Effect<PresenceTracker | undefined> =>
  Effect.gen(function* () {
    if (options.presence === undefined || options.presence.rules.length === 0) return undefined
    const store = transport.presence
    if (store === undefined) {
      return yield* Effect.die(new Error(`presence: the ${transport.name} transport has no presence store`))
    }
    const tracker = new PresenceTracker(options.presence as PresenceOptions<AnyProtocol>, {
      store,
      node: newId(9),
      publish: (channel, event, data, idempotencyKey) => publisher.publish(channel, event, data, { idempotencyKey }),
      fork,
      now
    })
    // a broker that fails now is retried by the heartbeat; the members written meanwhile count as present
    yield* tracker.start().pipe(Effect.catch((error) => Effect.logWarning(`tidings presence: ${error.message}`)))
    return tracker
  })

/** What a set of handlers needs from the context: the union of their Effects' requirements. */
export type HandlersRequirements<H> = {
  [K in keyof H]: H[K] extends (...args: never) => Effect.Effect<unknown, unknown, infer R> ? R : never
}[keyof H]

/**
 * The server as a Layer; needs a Transport (Memory.layer() for one node) and whatever the handlers need (a
 * RunClient for commands bound to runs), inferred from the handlers themselves.
 */
export const layer = <P extends AnyProtocol, H extends Handlers<P, unknown>>(
  options: ServerOptions<P, HandlersRequirements<H>> & { readonly handlers: H }
) => Layer.effect(TidingsServer, make<P, HandlersRequirements<H>>(options))
