/**
 * The Redis transport (Redis >= 6.2, ioredis): channel logs in Redis streams, live delivery by pub/sub, session
 * cursors and presence (redis/Presence.ts) in hashes, so several tidings nodes share channels and a client can resume on any node. With its
 * redis/ folder (connections in redis/Connections.ts), the only part of tidings that imports ioredis.
 *
 * - Append is one Lua script per channel (redis/scripts.ts): create the epoch if the channel's meta is missing →
 *   next offset → XADD `<offset>-0` with exact MAXLEN → age trim → PUBLISH the announcement, atomically, so
 *   history and live delivery agree. An idempotency record remembers each keyed append for the window. The
 *   appends made to one channel in the same tick share one script call and one announcement (redis/Batcher.ts);
 *   each still gets its own entry, or the call's error.
 * - Read is one Lua script too, returning the page as one string (cheaper for this node than an XRANGE reply of
 *   many small strings): the channel's segments it spans — each 100 entries' run, written beside the stream by
 *   the append script — or, where a segment is missing, the stream's fields; the node cuts the page out of the
 *   segments and checks that they hold what they must (`segmentsHold`), else reads the stream. The transport
 *   itself reads no page ahead: a page read before a subscriber joined the live feed carries a top from before it
 *   joined, and the live feed's gap fill must never act on such a top.
 * - Live delivery uses ONE subscriber connection per transport (per node), subscribed per channel with local
 *   reference counting; redis/LiveFeed.ts orders announcements per listener, skips duplicates and fills gaps from
 *   the stream. After the subscriber reconnects, every channel is checked for entries missed meanwhile.
 * - Time for retention, cursor expiry and the idempotency window comes from the caller's Clock, as in the other
 *   transports. Key TTLs are garbage collection: a stream expires `maxAgeMs` + 1 min after its last append (every
 *   entry is past its age by then); the channel's meta (epoch and top) lives `metaTtlMs` (default 7 days, at
 *   least as long as the stream), so a channel that is only idle keeps its epoch and clients resume without a
 *   reset; cursors expire `cursorTtlMs` + 30 s to 1 min after the session's last save (a node sets a
 *   session's TTL at most every 30 s); idempotency records after the
 *   window + 1 min. With `maxAgeMs` infinite, neither stream nor meta expires.
 * - Failures: commands are never queued while Redis is unreachable and never re-sent after a dropped connection;
 *   they fail at once (or after `commandTimeoutMs`) with a retryable `TransportError`. An append that failed this
 *   way may or may not have been applied: retry it with the same idempotency key. The connections reconnect by
 *   themselves (backoff up to `reconnectMaxDelayMs`); `healthy` is false meanwhile.
 *
 * - Sentinel: with `sentinels`, ioredis asks them for the primary and follows failovers. Replication is
 *   asynchronous, so a failover can lose appends the old primary acknowledged, unless `replicatedAcks` makes every
 *   append wait (`WAIT`) for a replica first (docs/guarantees.md says what each mode can lose).
 *
 * It does not support Redis Cluster (the keys already share a hash tag per channel, but it is untested).
 */
import { randomBytes } from "node:crypto"
import { Clock, Config, Effect, Layer, Option, Redacted, type Scope } from "effect"
import type { Position } from "../protocol/Position.ts"
import * as Batcher from "./redis/Batcher.ts"
import * as Connections from "./redis/Connections.ts"
import { errorMessage, UnexpectedReply } from "./redis/Connections.ts"
import * as Codec from "./redis/codec.ts"
import * as LiveFeed from "./redis/LiveFeed.ts"
import * as RedisPresence from "./redis/Presence.ts"
import * as Scripts from "./redis/scripts.ts"
import { TtlRefreshes } from "./redis/TtlRefreshes.ts"
import {
  type Appended,
  type Entry,
  type Publication,
  type ReadResult,
  type Retention,
  resolveOptions,
  Transport,
  TransportError,
  type TransportOptions,
  type TransportShape
} from "./Transport.ts"

export interface RedisTransportOptions extends TransportOptions {
  /**
   * `redis://[user:password@]host:port[/db]` (`rediss://` for TLS). Required without `sentinels`; with them, only
   * its user, password and database are used (e.g. `redis://:secret@sentinel/0`).
   */
  readonly url?: string | Redacted.Redacted<string>
  /**
   * Redis Sentinel: the sentinels to ask for the current primary of `sentinelName` (ioredis's sentinel support).
   * After a failover both connections reconnect to the new primary by themselves.
   */
  readonly sentinels?: ReadonlyArray<{ readonly host: string; readonly port: number }>
  /** The name the sentinels monitor the primary under (default "mymaster"). */
  readonly sentinelName?: string
  /**
   * "Acknowledged means replicated": after every append script, `WAIT <replicas> <timeoutMs>`; an append is
   * acknowledged only once that many replicas have it, and fails with a retryable TransportError when fewer
   * confirm in time (the entry may then be on the primary only: retry with the same idempotency key). Default
   * off (`replicas: 0`): Redis replicates asynchronously, and a failover can lose acknowledged appends.
   * `timeoutMs` (default 1000) must be below `commandTimeoutMs`.
   */
  readonly replicatedAcks?: { readonly replicas: number; readonly timeoutMs?: number }
  /**
   * Prefix of every key and pub/sub channel of this transport (default `"tidings:"`). Use one per deployment
   * sharing a Redis, and one per test. Must not contain `{` or `}`.
   */
  readonly keyPrefix?: string
  /** A command without a reply after this long fails with a retryable TransportError (default 2000 ms). */
  readonly commandTimeoutMs?: number
  /** Upper bound of the delay between reconnection attempts (default 1000 ms). */
  readonly reconnectMaxDelayMs?: number
  /** How long a channel's epoch and top outlive its last append (default 7 days; never less than the stream). */
  readonly metaTtlMs?: number
  /** How long `healthy` waits for a PING (default 500 ms). */
  readonly healthTimeoutMs?: number
}

const defaultKeyPrefix = "tidings:"
/** Key TTLs are garbage collection; this much after the logical expiry, so clocks that differ a little agree. */
const gcGraceMs = 60_000
/**
 * A session's cursor key TTL set this recently is not set again by a batched save (TtlRefreshes.ts): half the
 * grace, so the TTL still ends at least 30 s after the logical expiry a later save writes.
 */
const cursorTtlReuseMs = gcGraceMs / 2
const maxReadLimit = 100_000

/**
 * Whether a run read from segments holds exactly what they must: every offset from the first segment's first one
 * (`runFirst`) to the last segment's end or the top, so the page from `first` is numbered right and complete.
 */
const segmentsHold = (
  page: { readonly entries: ReadonlyArray<Entry>; readonly total: number },
  runFirst: number,
  first: number,
  count: number,
  top: number
): boolean => {
  const last = Math.min(top, first + Math.max(count, 1) - 1)
  const segmentEnd = (Math.floor((last - 1) / Codec.SEGMENT_ENTRIES) + 1) * Codec.SEGMENT_ENTRIES
  return (
    page.total === Math.min(top, segmentEnd) - runFirst + 1 && page.entries.length === Math.min(count, last - first + 1)
  )
}
/** Appends per script call at most (they are sent as arguments of one EVALSHA). */
const maxAppendBatch = 128
/** Channels per SUBSCRIBE when re-subscribing after a reconnect. */
const resubscribeBatch = 1000

/** An append waiting for its channel's next script call; `now` is from the caller's Clock. */
interface PendingAppend {
  readonly publication: Publication
  readonly idempotencyKey: string | undefined
  readonly now: number
}

const isArray = (u: unknown): u is ReadonlyArray<unknown> => Array.isArray(u)
const asString = (u: unknown): string => {
  if (typeof u === "string") return u
  if (typeof u === "number") return String(u)
  throw new UnexpectedReply(`expected a string in a Redis reply, got ${typeof u}`)
}

/** Builds the transport; its two connections close when the scope closes. Fails when Redis is unreachable. */
export const make = (options: RedisTransportOptions): Effect.Effect<TransportShape, TransportError, Scope.Scope> =>
  Effect.gen(function* () {
    const resolved = resolveOptions(options)
    const url = (Redacted.isRedacted(options.url) ? Redacted.value(options.url) : options.url) ?? ""
    if (url === "" && options.sentinels === undefined) {
      return yield* new TransportError({ message: "the Redis transport needs a url or sentinels", retryable: false })
    }
    const keyPrefix = options.keyPrefix ?? defaultKeyPrefix
    if (/[{}]/.test(keyPrefix)) {
      return yield* new TransportError({
        message: `Redis keyPrefix ${JSON.stringify(keyPrefix)} must not contain "{" or "}" (they delimit hash tags)`,
        retryable: false
      })
    }
    const commandTimeoutMs = options.commandTimeoutMs ?? 2000
    const reconnectMaxDelayMs = options.reconnectMaxDelayMs ?? 1000
    const metaTtlMs = options.metaTtlMs ?? 7 * 24 * 60 * 60 * 1000
    const healthTimeoutMs = options.healthTimeoutMs ?? 500
    const waitReplicas = Math.max(0, Math.floor(options.replicatedAcks?.replicas ?? 0))
    const waitTimeoutMs = options.replicatedAcks?.timeoutMs ?? 1000
    if (waitReplicas > 0 && !(waitTimeoutMs > 0 && waitTimeoutMs < commandTimeoutMs)) {
      return yield* new TransportError({
        message: `Redis replicatedAcks.timeoutMs (${waitTimeoutMs}) must be above 0 and below commandTimeoutMs (${commandTimeoutMs})`,
        retryable: false
      })
    }

    const services = yield* Effect.context<never>()
    const runFork = Effect.runForkWith(services)
    const clock = yield* Clock.Clock
    const log = (level: "warn" | "info", message: string, ...rest: ReadonlyArray<unknown>) => {
      runFork(level === "warn" ? Effect.logWarning(message, ...rest) : Effect.logInfo(message, ...rest))
    }

    let feed: LiveFeed.LiveFeed | undefined
    const { client, subscriber, toTransportError, safeUrl } = yield* Connections.open({
      url,
      ...(options.sentinels !== undefined ? { sentinels: options.sentinels } : {}),
      ...(options.sentinelName !== undefined ? { sentinelName: options.sentinelName } : {}),
      commandTimeoutMs,
      reconnectMaxDelayMs,
      log,
      onClose: () => feed?.close()
    })

    const evalScript = (script: Scripts.Script, keys: ReadonlyArray<string>, args: ReadonlyArray<string | number>) =>
      client.evalsha(script.sha, keys.length, ...keys, ...args).catch((error: unknown) => {
        // The script cache was flushed (or this Redis restarted): EVAL loads it again.
        if (error instanceof Error && error.message.startsWith("NOSCRIPT")) {
          return client.eval(script.lua, keys.length, ...keys, ...args)
        }
        throw error
      })
    yield* Effect.tryPromise({
      try: () => Promise.all([client.script("LOAD", Scripts.append.lua), client.script("LOAD", Scripts.read.lua)]),
      catch: toTransportError("loading scripts")
    })

    // Epoch candidates: unique per call (node id + counter), so a channel lost and re-created never gets its old
    // epoch back. The script uses one only when the channel's meta is missing.
    /** Sessions whose cursor key TTL this node set lately (saveCursors skips the PEXPIRE for them). */
    const cursorTtls = new TtlRefreshes(cursorTtlReuseMs)
    const nodeId = randomBytes(6).toString("base64url")
    let epochCounter = 0
    const nextEpoch = () => `${nodeId}.${(epochCounter++).toString(36)}`

    const streamTtl = (retention: Retention) =>
      Number.isFinite(retention.maxAgeMs) ? Math.ceil(retention.maxAgeMs) + gcGraceMs : 0
    const metaTtl = (retention: Retention) => {
      const stream = streamTtl(retention)
      return stream === 0 ? 0 : Math.max(stream, metaTtlMs)
    }
    /** Entries stored before this are past their age ("": no age limit). */
    const cutoff = (retention: Retention, now: number) =>
      Number.isFinite(retention.maxAgeMs) ? now - retention.maxAgeMs : ""

    /** Appends one channel's batch in one script call (redis/Batcher.ts gathers the appends of a tick). */
    const appendBatch = async (channel: string, batch: ReadonlyArray<PendingAppend>): Promise<Array<Appended>> => {
      const keys = Codec.channelKeys(keyPrefix, channel)
      const retention = resolved.retention(channel)
      const scriptKeys = [keys.meta, keys.stream, keys.segments]
      const args: Array<string | number> = [
        nextEpoch(),
        keys.live,
        Number.isFinite(retention.maxEntries) ? Math.max(0, Math.floor(retention.maxEntries)) : -1,
        Number.isFinite(retention.maxAgeMs) ? Math.max(0, retention.maxAgeMs) : -1,
        streamTtl(retention),
        metaTtl(retention),
        resolved.idempotencyWindowMs,
        Math.ceil(resolved.idempotencyWindowMs) + gcGraceMs
      ]
      for (const { publication, idempotencyKey, now } of batch) {
        let record = 0
        if (idempotencyKey !== undefined) record = scriptKeys.push(keys.idempotency + idempotencyKey)
        args.push(Codec.encodeHeader(now, publication), publication.data, record)
      }
      const reply = await evalScript(Scripts.append, scriptKeys, args)
      if (waitReplicas > 0) {
        // WAIT counts the replicas that acknowledged every write this connection made so far, this script's too
        // (also when it only found idempotency records: a retry waits for the first append's replication).
        const replicated = await client.wait(waitReplicas, waitTimeoutMs)
        if (replicated < waitReplicas) {
          throw new TransportError({
            message: `Redis append on ${safeUrl}: ${replicated} of ${waitReplicas} replica(s) confirmed it within ${waitTimeoutMs} ms; it may be stored on the primary only, retry it with the same idempotency key`,
            retryable: true
          })
        }
      }
      if (!isArray(reply) || reply.length !== batch.length + 1) {
        throw new UnexpectedReply("append returned no epoch and result per entry")
      }
      const epoch = asString(reply[0])
      return batch.map(({ publication }, i) => {
        const result = reply[i + 1]
        if (typeof result === "number") {
          const { event, data, version, time } = publication
          return { channel, epoch, offset: result, event, data, version, time }
        }
        const remembered = typeof result === "string" ? Codec.decodeAnnouncement(channel, result) : undefined
        if (remembered?.length !== 1) throw new UnexpectedReply("malformed idempotency record")
        return { ...remembered[0]!, duplicate: true as const }
      })
    }
    const appends = Batcher.make(appendBatch, maxAppendBatch)

    const readUnsafe = async (
      channel: string,
      since: Position | undefined,
      limit: number,
      now: number,
      segments = true
    ): Promise<ReadResult> => {
      const keys = Codec.channelKeys(keyPrefix, channel)
      const retention = resolved.retention(channel)
      const count = limit > 0 ? Math.min(Math.floor(limit), maxReadLimit) : 0
      const reply = await evalScript(
        Scripts.read,
        [keys.meta, keys.stream, keys.segments],
        [
          nextEpoch(),
          metaTtl(retention),
          since === undefined ? "oldest" : "since",
          since?.epoch ?? "",
          since?.offset ?? 0,
          count,
          cutoff(retention, now),
          segments ? "1" : "0"
        ]
      )
      if (!isArray(reply) || reply.length !== 6) throw new UnexpectedReply("read returned no page")
      const epoch = asString(reply[0])
      const top: Position = { epoch, offset: Number(asString(reply[1])) }
      const status = asString(reply[2])
      if (status === "epoch") return { entries: [], top, covered: false, reason: "epoch_changed" }
      if (status === "trimmed") return { entries: [], top, covered: false, reason: "trimmed" }
      const runFirst = Number(asString(reply[3]))
      const first = Number(asString(reply[5]))
      const page = Codec.decodeRange(channel, epoch, runFirst, asString(reply[4]), 0, first, count)
      if (page === undefined) throw new UnexpectedReply(`malformed entries in the stream of ${channel}`)
      if (status === "segments" && !segmentsHold(page, runFirst, first, count, top.offset)) {
        // a segment that does not hold what it should (never written that way by this transport): the stream decides
        return readUnsafe(channel, since, limit, now, false)
      }
      return { entries: page.entries, top, covered: true }
    }

    const topUnsafe = async (channel: string): Promise<Position> => {
      const keys = Codec.channelKeys(keyPrefix, channel)
      const reply = await evalScript(
        Scripts.read,
        [keys.meta, keys.stream, keys.segments],
        [nextEpoch(), metaTtl(resolved.retention(channel)), "top", "", 0, 0, "", "0"]
      )
      if (!isArray(reply)) throw new UnexpectedReply("top returned no array")
      return { epoch: asString(reply[0]), offset: Number(asString(reply[1])) }
    }

    feed = LiveFeed.make(
      {
        subscribe: (channel) => subscriber.subscribe(Codec.channelKeys(keyPrefix, channel).live).then(() => undefined),
        unsubscribe: (channel) =>
          subscriber.status === "ready"
            ? subscriber.unsubscribe(Codec.channelKeys(keyPrefix, channel).live).then(() => undefined)
            : Promise.resolve(),
        top: topUnsafe,
        readAfter: async (channel, after, limit) => {
          const now = clock.currentTimeMillisUnsafe()
          let result = await readUnsafe(channel, after, limit, now)
          if (!result.covered) result = await readUnsafe(channel, undefined, limit, now)
          return { epoch: result.top.epoch, entries: result.entries }
        },
        report: (message, cause) => log("warn", `${message}: ${errorMessage(cause)}`)
      },
      { retryMaxMs: reconnectMaxDelayMs }
    )
    const liveFeed = feed

    const livePrefix = `${keyPrefix}{`
    const liveSuffix = "}:live"
    subscriber.on("message", (live: string, message: string) => {
      if (!live.startsWith(livePrefix) || !live.endsWith(liveSuffix)) return
      const channel = Codec.unescapeName(live.slice(livePrefix.length, live.length - liveSuffix.length))
      const entries = Codec.decodeAnnouncement(channel, message)
      if (entries === undefined) {
        log("warn", `tidings redis transport: ignored a malformed announcement on ${live}`)
        return
      }
      for (const entry of entries) liveFeed.announce(channel, entry)
    })

    // After a reconnect: subscribe again to every channel with listeners, THEN look for what was missed (in this
    // order, or an entry appended in between would be neither announced to us nor found by the check).
    const resubscribe = (): void => {
      const channels = liveFeed.channels()
      if (channels.length === 0) return
      const live = channels.map((channel) => Codec.channelKeys(keyPrefix, channel).live)
      const batches: Array<Promise<unknown>> = []
      for (let i = 0; i < live.length; i += resubscribeBatch) {
        batches.push(subscriber.subscribe(...live.slice(i, i + resubscribeBatch)))
      }
      Promise.all(batches).then(
        () => liveFeed.resync(),
        (cause: unknown) => {
          log(
            "warn",
            `tidings redis transport: re-subscribing ${live.length} channel(s) failed (${errorMessage(cause)}); retrying`
          )
          // A newer connection's `ready` retries by itself; a live connection that refused needs a nudge.
          if (subscriber.status === "ready") setTimeout(resubscribe, 500)
        }
      )
    }
    // a `ready` after the first connect is a reconnect: subscribe again and look for what was missed
    let started = false
    subscriber.on("ready", () => {
      if (started) resubscribe()
    })
    started = true

    const run = <A>(operation: string, attempt: () => Promise<A>): Effect.Effect<A, TransportError> =>
      Effect.tryPromise({ try: attempt, catch: toTransportError(operation) })

    const withNow = <A>(f: (now: number) => Effect.Effect<A, TransportError>): Effect.Effect<A, TransportError> =>
      Effect.withFiber((fiber) => f(fiber.getRef(Clock.Clock).currentTimeMillisUnsafe()))

    const ping = (): Promise<boolean> =>
      new Promise((resolve) => {
        const timer = setTimeout(() => resolve(false), healthTimeoutMs)
        client.ping().then(
          () => {
            clearTimeout(timer)
            resolve(true)
          },
          () => {
            clearTimeout(timer)
            resolve(false)
          }
        )
      })

    const transport: TransportShape = {
      name: "redis",
      // a page takes Redis longer (its Lua builds the run) than the server needs to send one: with two reads
      // queued, Redis is never idle between pages. One client resuming 10,000 entries, 6 runs each way:
      // median 262k entries/s with 2, 225k with 1 (docs/performance.md)
      readAhead: 2,
      append: (channel, publication, appendOptions) =>
        withNow((now) =>
          run("append", () => appends.add(channel, { publication, idempotencyKey: appendOptions?.idempotencyKey, now }))
        ),
      read: (channel, since, limit) => withNow((now) => run("read", () => readUnsafe(channel, since, limit, now))),
      top: (channel) => run("top", () => topUnsafe(channel)),
      listen: (channel, listener) =>
        Effect.asVoid(
          Effect.acquireRelease(
            run("listen", () => liveFeed.add(channel, listener)),
            (release) => Effect.sync(release)
          )
        ),
      saveCursor: (session, channel, position) =>
        withNow((now) =>
          run("saveCursor", async () => {
            const key = Codec.cursorKey(keyPrefix, session)
            const results = await client
              .multi()
              .hset(key, {
                [channel]: Codec.encodeCursor(position.epoch, position.offset),
                [Codec.cursorExpiryField]: String(now + resolved.cursorTtlMs)
              })
              .pexpire(key, Math.ceil(resolved.cursorTtlMs) + gcGraceMs)
              .exec()
            if (results === null) throw new Error("transaction aborted")
            for (const [error] of results) if (error) throw error
          })
        ),
      // one pipeline for the lot, one HSET and one PEXPIRE per session (its channels together)
      saveCursors: (writes) =>
        withNow((now) =>
          run("saveCursors", async () => {
            if (writes.length === 0) return
            // Maps, not objects: a channel may be named `__proto__`; a later write for a channel replaces the earlier
            const bySession = new Map<string, Map<string, string>>()
            for (const { session, channel, position } of writes) {
              let fields = bySession.get(session)
              if (fields === undefined) {
                fields = new Map()
                bySession.set(session, fields)
              }
              fields.set(channel, Codec.encodeCursor(position.epoch, position.offset))
            }
            const expiry = String(now + resolved.cursorTtlMs)
            const ttl = Math.ceil(resolved.cursorTtlMs) + gcGraceMs
            const pipeline = client.pipeline()
            const refreshing: Array<string> = []
            /** Sessions saved without a PEXPIRE, with the index of their HSET's reply. */
            const kept: Array<{ readonly session: string; readonly key: string; readonly reply: number }> = []
            let replies = 0
            for (const [session, fields] of bySession) {
              const key = Codec.cursorKey(keyPrefix, session)
              const args: Array<string> = []
              for (const [channel, value] of fields) args.push(channel, value)
              args.push(Codec.cursorExpiryField, expiry)
              pipeline.hset(key, ...args)
              // the logical expiry moves with every save; the key's TTL only when this node has not set it lately
              if (cursorTtls.fresh(session)) {
                kept.push({ session, key, reply: replies })
                replies += 1
              } else {
                pipeline.pexpire(key, ttl)
                refreshing.push(session)
                replies += 2
              }
            }
            const results = (await pipeline.exec()) ?? []
            for (const [error] of results) if (error) throw error
            // HSET counts the fields it added. The expiry field is in every saved hash, so a count that includes it
            // may mean the key is new again (Redis restarted empty, flushed, evicted it) and has no TTL: set it.
            // A new channel in a session counts too; that is rare enough to pay one PEXPIRE.
            const recreated = kept.filter(({ reply }) => Number(results[reply]?.[1]) > 0)
            if (recreated.length > 0) {
              const again = client.pipeline()
              for (const { key } of recreated) again.pexpire(key, ttl)
              for (const [error] of (await again.exec()) ?? []) if (error) throw error
            }
            for (const session of refreshing) cursorTtls.refreshed(session)
          })
        ),
      loadCursors: (session) =>
        withNow((now) =>
          run("loadCursors", async () => {
            const stored = await client.hgetall(Codec.cursorKey(keyPrefix, session))
            const cursors = new Map<string, Position>()
            const expiresAt = Number(stored[Codec.cursorExpiryField])
            if (!(expiresAt > now)) return cursors
            for (const channel in stored) {
              if (channel === Codec.cursorExpiryField) continue
              const position = Codec.decodeCursor(stored[channel]!)
              if (position !== undefined) cursors.set(channel, position)
            }
            return cursors
          })
        ),
      presence: RedisPresence.make(client, keyPrefix, toTransportError),
      healthy: Effect.suspend(() =>
        client.status === "ready" && subscriber.status === "ready" ? Effect.promise(ping) : Effect.succeed(false)
      )
    }
    return transport
  })

/** The Redis transport as the `Transport` service. */
export const layer = (options: RedisTransportOptions): Layer.Layer<Transport, TransportError> =>
  Layer.effect(Transport, make(options))

/**
 * The Redis transport configured from the environment: `REDIS_URL` (required unless `REDIS_SENTINELS` is set),
 * `REDIS_KEY_PREFIX` (optional; `options.keyPrefix` wins, default `"tidings:"`), `REDIS_SENTINELS`
 * (`host:port,host:port,…`) with `REDIS_SENTINEL_NAME` (default "mymaster"), and `REDIS_WAIT_REPLICAS` /
 * `REDIS_WAIT_TIMEOUT_MS` for `replicatedAcks` (default 0: off).
 */
export const layerConfig = (
  options: Omit<RedisTransportOptions, "url"> = {}
): Layer.Layer<Transport, TransportError | Config.ConfigError> =>
  Layer.effect(
    Transport,
    Effect.gen(function* () {
      const sentinelList = yield* Config.String("REDIS_SENTINELS").pipe(Config.withDefault(""))
      const sentinels = sentinelList
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0)
        .map((s) => {
          const colon = s.lastIndexOf(":")
          return colon < 0 ? { host: s, port: 26379 } : { host: s.slice(0, colon), port: Number(s.slice(colon + 1)) }
        })
      const url =
        sentinels.length > 0
          ? Option.getOrUndefined(yield* Config.option(Config.Redacted("REDIS_URL")))
          : yield* Config.Redacted("REDIS_URL")
      const keyPrefix = yield* Config.option(Config.String("REDIS_KEY_PREFIX"))
      const sentinelName = yield* Config.String("REDIS_SENTINEL_NAME").pipe(
        Config.withDefault(options.sentinelName ?? "mymaster")
      )
      const waitReplicas = yield* Config.Number("REDIS_WAIT_REPLICAS").pipe(
        Config.withDefault(options.replicatedAcks?.replicas ?? 0)
      )
      const waitTimeoutMs = yield* Config.Number("REDIS_WAIT_TIMEOUT_MS").pipe(
        Config.withDefault(options.replicatedAcks?.timeoutMs ?? 1000)
      )
      return yield* make({
        ...options,
        ...(url !== undefined ? { url } : {}),
        ...(sentinels.length > 0 ? { sentinels, sentinelName } : {}),
        ...(waitReplicas > 0 ? { replicatedAcks: { replicas: waitReplicas, timeoutMs: waitTimeoutMs } } : {}),
        keyPrefix: options.keyPrefix ?? Option.getOrElse(keyPrefix, () => defaultKeyPrefix)
      })
    })
  )
