/**
 * The NATS JetStream transport: channel logs shared by many tidings nodes through one JetStream stream.
 *
 * Layout. One stream (`stream`, default "TIDINGS") captures `<subjectPrefix>.*`; channel `c` is the subject
 * `<subjectPrefix>.<base64url(c)>` (nats/codec.ts — any channel name is safe and reversible). Session cursors
 * live in a KV bucket (`KV_<cursorBucket>`, one key per session and channel, max age = cursorTtlMs), presence in
 * another (`KV_<stream>_presence`, nats/Presence.ts). The streams are created or verified at start-up (nats/streams.ts): file storage, and 3
 * replicas on a cluster of three or more servers, 1 otherwise (`storage`, `replicas`); the channel stream keeps `streamRetention.maxEntries` messages per subject and drops
 * messages older than `streamRetention.maxAgeMs`, with a duplicate window of `idempotencyWindowMs`.
 * Durability is the server's: by default nats-server syncs file stores to disk on a timer (every 2 minutes), not
 * on every acknowledged write, so a machine crash (not a process crash) can lose recent entries of a
 * single-replica stream; on a cluster the default of 3 replicas keeps an acknowledged entry on a quorum of two
 * servers (see nats-server#6888).
 *
 * Clusters. `servers` lists seed URLs; nats.js learns the others from the server and reconnects to any of them.
 * A publish goes to the stream's leader: while a new leader is elected (nats-server waits 4–9 s for a silent
 * leader before electing another) appends fail with a retryable `TransportError` (no responders, or a timeout)
 * and succeed again afterwards; an append retried with the same idempotency key is stored once, since the new
 * leader rebuilds the duplicate window from the replicated messages. When a leader is elected the live consumer
 * is replaced (nats/LiveFeed.ts), as after a reconnect. A server that stops answering while its TCP connection stays
 * open (cut off by the network, frozen) is left for another server of the cluster after `silentServerMs`
 * (nats/SilentServer.ts), instead of after nats.js's own pings (minutes).
 *
 * Positions (the same contract as Memory.ts and Redis.ts). JetStream's stream sequence is global, not
 * contiguous per subject, so it is never exposed. Each message carries its channel offset and epoch in headers;
 * an append is a publish conditional on `Nats-Expected-Last-Subject-Sequence` = the sequence of the channel's
 * newest message, so offsets stay contiguous even with many nodes appending to one channel (the loser of a race
 * re-reads the subject's last message and retries). `Nats-Msg-Id` (channel token + idempotency key) makes a
 * retried append return the original entry within the duplicate window. An epoch is random and belongs to a
 * channel: it is created with the channel's first message (or an offset-0 marker message written by `top`), so
 * whenever a subject has been emptied — stream deleted and recreated, subject purged, every message aged out —
 * the channel gets a new epoch and old positions are reported as `epoch_changed`, never silently reused.
 * Per-channel `retention` is applied on read (entries beyond maxEntries or older than maxAgeMs by the stored-at
 * header are reported as `trimmed`), within the stream's physical limits, so set `streamRetention` at least as
 * large as the largest per-channel retention.
 *
 * Replay and live feed: see nats/ChannelLog.ts (sequence lookup, then an ephemeral filtered consumer, kept for
 * the next page of a catch-up: nats/Pager.ts) and nats/LiveFeed.ts (one wildcard ordered consumer per node,
 * dispatching locally, with offset gap checks).
 *
 * Faults. An unreachable server at start-up fails the layer with one line naming the URL. Later, the connection
 * reconnects forever by itself; while it is down `healthy` is false and every operation fails at once with a
 * retryable `TransportError` (requests in flight when it drops fail immediately too), and listeners resume
 * after the reconnect from where their consumer stopped. An append that failed that way may still have been
 * stored: retry it with the same idempotency key. Stream recreation is noticed from JetStream advisories and
 * after every reconnect (the stream's creation time changes): cached positions are dropped and the live feed
 * restarts at the new stream's first message.
 *
 * Performance: appends to different channels pipeline over the one connection; appends to one channel are
 * serialized (each needs its predecessor's sequence). Publishes bypass nats.js's request machinery, which builds
 * an Error with a stack trace per reply (about 40% of its CPU when publishing): acks are matched on one shared
 * reply subscription (nats/Publisher.ts), and the connection is opened with `noAsyncTraces` for the remaining
 * requests. Applications may also set `Error.stackTraceLimit = 0` themselves; this library sets no globals.
 * This module and nats/ are the only ones that import the NATS client.
 */
import { type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { Clock, Config, Effect, Layer, type Scope } from "effect"
import { ChannelLog } from "./nats/ChannelLog.ts"
import { Cursors, cursorStreamName, cursorSubjects } from "./nats/Cursors.ts"
import { channelToken } from "./nats/codec.ts"
import { isStreamNotFound, Link } from "./nats/Link.ts"
import { LiveFeed } from "./nats/LiveFeed.ts"
import { Pager } from "./nats/Pager.ts"
import { CHECKED_WITH, installedNatsCore, installFastParser } from "./nats/ParserSwap.ts"
import * as NatsPresence from "./nats/Presence.ts"
import { presenceStreamName, presenceSubjects } from "./nats/Presence.ts"
import { Publisher } from "./nats/Publisher.ts"
import { answersWithin, leaveSilentServers, SilentServers } from "./nats/SilentServer.ts"
import {
  channelStreamSpec,
  cursorStreamSpec,
  ensureStream,
  presenceStreamSpec,
  type StreamSpec
} from "./nats/streams.ts"
import {
  defaultRetention,
  type Retention,
  resolveOptions,
  Transport,
  TransportError,
  type TransportOptions,
  type TransportShape
} from "./Transport.ts"

export interface NatsTransportOptions extends TransportOptions {
  /** Server URL(s) to connect to (default "nats://127.0.0.1:4222"). */
  readonly servers?: string | ReadonlyArray<string>
  /** One server URL; used when `servers` is not given. */
  readonly url?: string
  /** Name of the stream holding every channel log (default "TIDINGS"). */
  readonly stream?: string
  /** Subject prefix of the channels: channel `c` is `<subjectPrefix>.<token(c)>` (default "tidings"). */
  readonly subjectPrefix?: string
  /** KV bucket of the session cursors (default `<stream>_cursors`). */
  readonly cursorBucket?: string
  /**
   * Storage limits of the stream itself: messages kept per channel subject and their maximum age (default
   * `defaultRetention`). Per-channel `retention` is applied on read within these, so keep them at least as large.
   */
  readonly streamRetention?: Retention
  /** Storage of both streams when the transport creates them (default "file"). */
  readonly storage?: "file" | "memory"
  /**
   * Replicas of the three streams (channel logs, cursors, presence) when the transport creates them. Default
   * "auto": 3 when the server it connects to announces a cluster of three or more servers (the client URLs of the
   * cluster in its INFO, `connect_urls`), 1 otherwise. The count of an existing stream is left as it is (a warning
   * is logged when it differs); start every node with the same value.
   */
  readonly replicas?: number | "auto"
  /** Bound on every request to the server, in milliseconds (default 5000). */
  readonly requestTimeoutMs?: number
  /** Bound on connecting at start-up, in milliseconds (default 5000). */
  readonly connectTimeoutMs?: number
  /** Pause between reconnection attempts, in milliseconds (default 1000; attempts never stop). */
  readonly reconnectWaitMs?: number
  /**
   * On a cluster, how long the server this node is connected to may leave a ping unanswered before the connection
   * moves to another server, in milliseconds (default 3000; 0 leaves it to nats.js's pings, minutes apart). A
   * partitioned or frozen server keeps its TCP connection open: without this the node waits on it meanwhile.
   */
  readonly silentServerMs?: number
  /** Connection name shown by the server's monitoring (default "tidings"). */
  readonly connectionName?: string
  /** Capture an async stack trace on every request (debugging; default false, it costs ~40% of publish CPU). */
  readonly asyncTraces?: boolean
  /**
   * Read the server's bytes with tidings' protocol parser instead of nats.js's (default true; nats/FastParser.ts).
   * It reads a message about four times faster, and a replay receives one message per entry; false keeps nats.js's.
   */
  readonly fastParser?: boolean
}

export const defaultUrl = "nats://127.0.0.1:4222"

/** The subject of a channel's log, e.g. for inspecting it with the `nats` CLI. */
export const channelSubject = (subjectPrefix: string, channel: string): string =>
  `${subjectPrefix}.${channelToken(channel)}`

const validName = /^[A-Za-z0-9_-]+$/
const validPrefix = /^[^\s*>.]+(\.[^\s*>.]+)*$/

const invalid = (message: string) => new TransportError({ message, retryable: false })

/** Connects, creates or verifies the streams, and returns the transport; everything is released with the scope. */
export const make = (options: NatsTransportOptions = {}): Effect.Effect<TransportShape, TransportError, Scope.Scope> =>
  Effect.gen(function* () {
    const resolved = resolveOptions(options)
    const servers = [...(typeof options.servers === "string" ? [options.servers] : (options.servers ?? []))]
    if (servers.length === 0) servers.push(options.url ?? defaultUrl)
    const url = servers.join(",")
    const stream = options.stream ?? "TIDINGS"
    const prefix = options.subjectPrefix ?? "tidings"
    const bucket = options.cursorBucket ?? `${stream}_cursors`
    const timeoutMs = options.requestTimeoutMs ?? 5000
    const streamRetention = options.streamRetention ?? defaultRetention
    if (!validName.test(stream)) return yield* invalid(`invalid NATS stream name ${JSON.stringify(stream)}`)
    if (!validName.test(bucket)) return yield* invalid(`invalid NATS KV bucket name ${JSON.stringify(bucket)}`)
    if (!validPrefix.test(prefix)) return yield* invalid(`invalid NATS subject prefix ${JSON.stringify(prefix)}`)

    const context = yield* Effect.context<never>()
    const report = (message: string, cause: unknown): void => {
      Effect.runForkWith(context)(Effect.logWarning(message, cause))
    }
    const clock = yield* Clock.Clock
    const silentServers = new SilentServers(() => clock.currentTimeMillisUnsafe())

    const nc = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          connect({
            servers,
            name: options.connectionName ?? "tidings",
            timeout: options.connectTimeoutMs ?? 5000,
            waitOnFirstConnect: false,
            maxReconnectAttempts: -1,
            reconnectTimeWait: options.reconnectWaitMs ?? 1000,
            noAsyncTraces: !(options.asyncTraces ?? false),
            reconnectToServer: silentServers.pick
          }),
        catch: (error) =>
          new TransportError({
            message: `cannot reach NATS at ${url}: ${error instanceof Error ? error.message : String(error)}`,
            retryable: true
          })
      }),
      (connection) => Effect.promise(() => shutdown(connection))
    )
    const replicas = yield* resolveReplicas(options.replicas, nc)
    const storage = { storage: options.storage ?? "file", replicas } as const
    if ((options.fastParser ?? true) && !installFastParser(nc)) {
      report(
        "tidings nats: keeping nats.js's protocol parser",
        `the transport's was checked with @nats-io/nats-core ${CHECKED_WITH}, this is ${installedNatsCore ?? "unknown"}, or its internals are not as expected`
      )
    }
    const jsm = yield* Effect.tryPromise({
      try: () => jetstreamManager(nc, { timeout: timeoutMs }),
      catch: (error) =>
        new TransportError({
          message: `NATS at ${url} has no JetStream (${error instanceof Error ? error.message : String(error)}); start nats-server with -js`,
          retryable: false
        })
    })
    const publisher = new Publisher(nc, timeoutMs)
    yield* Effect.addFinalizer(() => Effect.sync(() => publisher.close()))
    const link = new Link(
      nc,
      jetstream(nc, { timeout: timeoutMs }),
      jsm,
      publisher,
      { url, stream, prefix, timeoutMs },
      report
    )

    const channelSpec = channelStreamSpec({
      ...storage,
      name: stream,
      prefix,
      maxEntries: streamRetention.maxEntries,
      maxAgeMs: streamRetention.maxAgeMs,
      duplicateWindowMs: resolved.idempotencyWindowMs
    })
    const cursorSpec = cursorStreamSpec({
      ...storage,
      name: cursorStreamName(bucket),
      subjects: cursorSubjects(bucket),
      ttlMs: resolved.cursorTtlMs
    })
    const setUp = (spec: StreamSpec) =>
      Effect.tryPromise({
        try: () => ensureStream(jsm, spec),
        catch: (error) =>
          new TransportError({
            message: `cannot create or verify JetStream stream ${spec.name} at ${url}: ${error instanceof Error ? error.message : String(error)}`,
            retryable: false
          })
      })
    const presenceBucket = `${stream}_presence`
    const presenceSpec = presenceStreamSpec({
      ...storage,
      name: presenceStreamName(presenceBucket),
      subjects: presenceSubjects(presenceBucket),
      maxAgeMs: 24 * 60 * 60 * 1000
    })
    const channelInfo = yield* setUp(channelSpec)
    const created = channelInfo.created
    for (const info of [channelInfo, yield* setUp(cursorSpec), yield* setUp(presenceSpec)]) {
      if (info.config.num_replicas !== replicas) {
        report(
          `tidings nats: stream ${info.config.name} has ${info.config.num_replicas} replica(s), the transport was configured with ${replicas}; existing streams keep theirs (change it with \`nats stream edit ${info.config.name} --replicas ${replicas}\`)`,
          ""
        )
      }
    }

    if (channelInfo.config.num_replicas > 1) {
      // followers answer direct gets while the stream elects a leader (appends re-read their channel's last message
      // that way, not with the leader-only lookup that hangs meanwhile); nothing answers one for a missing stream
      const directJsm = yield* Effect.promise(() =>
        jetstreamManager(nc, { timeout: Math.min(1000, timeoutMs), checkAPI: false })
      )
      link.directLast = (subject) => directJsm.direct.getMessage(stream, { last_by_subj: subject })
    }
    const pager = new Pager(link)
    yield* Effect.addFinalizer(() => Effect.sync(() => pager.closeAll()))
    const log = new ChannelLog(link, pager, { retention: resolved.retention })
    const feed = new LiveFeed(link, log, () => clock.currentTimeMillisUnsafe())
    const cursors = new Cursors(link, bucket, () => ensureStream(jsm, cursorSpec).then(() => {}))
    const watcher = new StreamWatcher(jsm, channelSpec, created, () => {
      log.invalidateAll()
      feed.restart()
    })
    // The repair goes through `call` like every other request (Cursors.ts does the same with its own): refused at
    // once while the connection is down and rejected when it drops. nats.js holds a request across a disconnect
    // until its timeout, so an append that found no stream as the server shut down waited 5 s, and every append
    // queued behind the same repair too.
    link.recoverStream = () => link.call(() => watcher.sync())

    yield* Effect.addFinalizer(() => Effect.promise(() => feed.close()))
    watchConnection(nc, link, watcher, feed, report)
    yield* leaveSilentServers(nc, link, options.silentServerMs ?? 3000, silentServers, report)
    const advisories = nc.subscribe(`$JS.EVENT.ADVISORY.STREAM.*.${stream}`, {
      callback: (error, message) => {
        if (error !== null) return
        if (message.subject.includes(".STREAM.LEADER_ELECTED.")) {
          // A cluster moved the stream to another server: the node's consumer (and kept pagers) may have gone with
          // the old one. Start a fresh live consumer after the last message dispatched, and read tops again.
          log.invalidateAll()
          feed.resume()
          // publishes sent to the old leader are never answered: fail them now (retryable) instead of at the timeout,
          // and those of the last 500 ms once 500 ms old
          publisher.failStale(500)
          return
        }
        const created = message.subject.includes(".STREAM.CREATED.")
        if (!created && !message.subject.includes(".STREAM.DELETED.")) return
        // Forget cached sequences now, before the next append relies on one. A deleted stream is re-created
        // only when next needed (recreating it while the server still removes its files can corrupt it).
        log.invalidateAll()
        if (created) watcher.sync().catch((cause) => report("tidings nats: checking the stream failed", cause))
      }
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => advisories.unsubscribe()))

    const run = <A>(operation: () => Promise<A>): Effect.Effect<A, TransportError> =>
      Effect.tryPromise({ try: operation, catch: (error) => link.toTransportError(error) })

    const transport: TransportShape = {
      name: "nats",
      append: (channel, publication, appendOptions) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          run(() => log.append(channel, publication, appendOptions?.idempotencyKey, now))
        ),
      read: (channel, since, limit) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => run(() => log.read(channel, since, limit, now))),
      top: (channel) => Effect.flatMap(Clock.currentTimeMillis, (now) => run(() => log.top(channel, now))),
      listen: (channel, listener) =>
        Effect.asVoid(
          Effect.acquireRelease(
            run(() => feed.add(channel, listener)),
            (release) => Effect.sync(release)
          )
        ),
      saveCursor: (session, channel, position) => run(() => cursors.save(session, channel, position)),
      // one publish per cursor (a KV key each), all in flight at once on the one connection
      saveCursors: (writes) =>
        run(() => Promise.all(writes.map((w) => cursors.save(w.session, w.channel, w.position))).then(() => undefined)),
      loadCursors: (session) => run(() => cursors.load(session)),
      presence: NatsPresence.make(link, presenceBucket),
      // a round trip to the server, not only the connection's state: a blackholed server looks connected
      // until the client's own pings time out (minutes)
      healthy: Effect.suspend(() =>
        link.connected && !nc.isClosed() ? Effect.promise(() => answersWithin(nc, 2000)) : Effect.succeed(false)
      )
    }
    return transport
  })

/**
 * `replicas` as given, or for "auto" (the default) 3 when the server announces a cluster of three or more servers
 * in its INFO (`cluster` names it, `connect_urls` lists the client URLs of the servers it is routed to, itself
 * included), 1 otherwise.
 */
const resolveReplicas = (
  replicas: number | "auto" | undefined,
  nc: NatsConnection
): Effect.Effect<number, TransportError> => {
  if (typeof replicas === "number") {
    return Number.isInteger(replicas) && replicas >= 1 && replicas <= 5
      ? Effect.succeed(replicas)
      : Effect.fail(invalid(`invalid NATS stream replicas ${replicas}: an integer from 1 to 5`))
  }
  return Effect.sync(() => clusterReplicas(nc.info))
}

/** 3 for a server that announces a cluster of three or more servers, 1 otherwise. */
export const clusterReplicas = (
  info: { readonly cluster?: string; readonly connect_urls?: Array<string> } | undefined
) => (info?.cluster !== undefined && (info.connect_urls?.length ?? 0) >= 3 ? 3 : 1)

/** The NATS transport as the `Transport` service. */
export const layer = (options: NatsTransportOptions = {}): Layer.Layer<Transport, TransportError> =>
  Layer.effect(Transport, make(options))

/**
 * The NATS transport configured from the environment: `NATS_URL` (default nats://127.0.0.1:4222, several
 * URLs separated by commas), `NATS_STREAM`, `NATS_SUBJECT_PREFIX` and `NATS_REPLICAS` (a number, or "auto"; these
 * win over `options`, defaults as in `make`). Other options come from `options`.
 */
export const layerConfig = (
  options: Omit<NatsTransportOptions, "servers" | "url"> = {}
): Layer.Layer<Transport, TransportError | Config.ConfigError> =>
  Layer.effect(
    Transport,
    Effect.gen(function* () {
      const url = yield* Config.String("NATS_URL").pipe(Config.withDefault(defaultUrl))
      const stream = yield* Config.String("NATS_STREAM").pipe(Config.withDefault(options.stream ?? "TIDINGS"))
      const subjectPrefix = yield* Config.String("NATS_SUBJECT_PREFIX").pipe(
        Config.withDefault(options.subjectPrefix ?? "tidings")
      )
      const replicasText = yield* Config.String("NATS_REPLICAS").pipe(Config.withDefault(""))
      const replicas =
        replicasText === "" || replicasText === "auto" ? (options.replicas ?? "auto") : Number(replicasText)
      const servers = url
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0)
      return yield* make({ ...options, servers, stream, subjectPrefix, replicas })
    })
  )

// -----------------------------------------------------------------------------------------------------------------

/**
 * Notices when the channel stream was deleted or recreated (its creation time changes) and re-creates it when
 * it is missing. Checks run one at a time; a check asked for while one runs runs again after it.
 *
 * A missing stream is created only after a grace period and a second look: nats-server 2.9 announces a deletion
 * before it has removed the stream's files, and a stream created with the same name meanwhile loses its files
 * to that removal ("error opening msg block file").
 */
const recreateGraceMs = 250

class StreamWatcher {
  private running: Promise<void> | undefined
  private again = false

  constructor(
    private readonly jsm: JetStreamManager,
    private readonly spec: StreamSpec,
    private created: string,
    private readonly onChange: () => void
  ) {}

  sync(): Promise<void> {
    if (this.running !== undefined) {
      this.again = true
      return this.running
    }
    const run = async (): Promise<void> => {
      try {
        do {
          this.again = false
          let info = await this.jsm.streams.info(this.spec.name).catch((error: unknown) => {
            if (isStreamNotFound(error)) return undefined
            throw error
          })
          if (info === undefined) {
            await new Promise((resolve) => setTimeout(resolve, recreateGraceMs))
            info = await ensureStream(this.jsm, this.spec, { verify: false })
          }
          if (info.created !== this.created) {
            this.created = info.created
            this.onChange()
          }
        } while (this.again)
      } finally {
        this.running = undefined
      }
    }
    this.running = run()
    return this.running
  }
}

const watchConnection = (
  nc: NatsConnection,
  link: Link,
  watcher: StreamWatcher,
  feed: LiveFeed,
  report: (message: string, cause: unknown) => void
): void => {
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") link.disconnected()
      else if (status.type === "reconnect") {
        link.reconnected()
        feed.resume()
        // The server may have lost or recreated the stream while we were away.
        watcher.sync().catch((cause) => report("tidings nats: checking the stream after reconnecting failed", cause))
      }
    }
  })()
}

/** Drains the connection (flushes what is pending), but never waits on an unreachable server for long. */
const shutdown = async (nc: NatsConnection): Promise<void> => {
  if (nc.isClosed()) return
  let timer: ReturnType<typeof setTimeout> | undefined
  const drained = nc.drain().catch(() => {})
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, 2000)
  })
  await Promise.race([drained, deadline])
  clearTimeout(timer)
  if (!nc.isClosed()) await nc.close().catch(() => {})
}
