/**
 * What only the Redis transport can show, on private redis-servers: gap filling when announcements are missed,
 * an epoch change after FLUSHALL or a crash, the subscriber connection dropping, Redis stopping for seconds and
 * coming back (appends fail fast and retryably, `healthy` follows, listeners catch up without re-creating the
 * transport), Redis hanging (command timeout), several nodes sharing one Redis, key TTLs and start-up failure.
 * The contract itself is checked by Redis.test.ts through the shared suite.
 */
import { randomUUID } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Layer } from "effect"
import { TestClock } from "effect/testing"
import * as Redis from "../../src/transports/Redis.ts"
import { channelKeys, cursorKey, encodeHeader } from "../../src/transports/redis/codec.ts"
import { type Entry, type Publication, Transport, TransportError } from "../../src/transports/Transport.ts"
import { freePort } from "../support/freePort.ts"
import { type RedisServer, redisServerScoped, startRedisServer } from "../support/redisServer.ts"
import { requireBinary } from "../support/requireBinary.ts"

const binary = requireBinary("redis-server", "Redis transport specifics")

const publication = (i: number): Publication => ({ event: "e", data: JSON.stringify({ i }), version: 1, time: i })

const collector = () => {
  const received: Array<Entry> = []
  return { received, listener: (entry: Entry) => void received.push(entry) }
}

/** Polls `condition` (real time) until it holds, or dies naming `what`. */
const waitFor = (what: string, condition: () => boolean | Effect.Effect<boolean>, timeoutMs = 10_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs
    while (true) {
      const result = condition()
      if (typeof result === "boolean" ? result : yield* result) return
      if (Date.now() > deadline)
        return yield* Effect.die(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`))
      yield* Effect.sleep(10)
    }
  })

/** A one-entry announcement in the form the append script publishes (codec.ts). */
const announcement = (epoch: string, offset: number, header: string, data: string) =>
  `${epoch}\n${offset}\n${header}${data}`

const offsets = (entries: ReadonlyArray<Entry>) => entries.map((e) => e.offset)
const toRecord = <V>(map: ReadonlyMap<string, V>) => Object.fromEntries(map)
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
const prefix = () => `tidings-test-${randomUUID().slice(0, 8)}:`

describe.skipIf(binary === undefined)("Redis transport", () => {
  let server: RedisServer
  beforeAll(async () => {
    server = await startRedisServer(binary)
  })
  afterAll(async () => {
    await server?.dispose()
  })

  it.live("fills a gap from the stream when announcements were missed, and skips duplicates", () =>
    Effect.gen(function* () {
      const keyPrefix = prefix()
      const t = yield* Redis.make({ url: server.url, keyPrefix })
      const keys = channelKeys(keyPrefix, "gap")
      const heard = collector()
      yield* t.listen("gap", heard.listener)
      const first = yield* t.append("gap", publication(1))
      yield* t.append("gap", publication(2))
      yield* waitFor("offsets 1-2", () => heard.received.length === 2)

      // Entries 3 and 4 reach the stream without an announcement, as if this node's subscriber had missed them.
      for (const i of [3, 4]) {
        const offset = yield* Effect.promise(() =>
          server.command(
            "EVAL",
            "local o = redis.call('HINCRBY', KEYS[1], 'top', 1) redis.call('XADD', KEYS[2], o .. '-0', ARGV[1], ARGV[2]) return o",
            2,
            keys.meta,
            keys.stream,
            encodeHeader(Date.now(), publication(i)),
            publication(i).data
          )
        )
        expect(offset).toBe(i)
      }
      // A stale duplicate announcement is skipped.
      yield* Effect.promise(() =>
        server.command(
          "PUBLISH",
          keys.live,
          announcement(first.epoch, 1, encodeHeader(Date.now(), publication(1)), publication(1).data)
        )
      )
      yield* Effect.sleep(50)
      expect(offsets(heard.received)).toEqual([1, 2])

      // Offset 5 is announced; the listener gets 3 and 4 from the stream first.
      yield* t.append("gap", publication(5))
      yield* waitFor("offsets 1-5", () => heard.received.length >= 5)
      yield* Effect.sleep(50)
      expect(offsets(heard.received)).toEqual([1, 2, 3, 4, 5])
      expect(heard.received.map((e) => e.data)).toEqual(range(1, 5).map((i) => publication(i).data))
      expect(new Set(heard.received.map((e) => e.epoch))).toEqual(new Set([first.epoch]))
    })
  )

  it.live("FLUSHALL starts a new epoch that readers see as epoch_changed and listeners receive", () =>
    Effect.gen(function* () {
      const t = yield* Redis.make({ url: server.url, keyPrefix: prefix() })
      const heard = collector()
      yield* t.listen("flush", heard.listener)
      const old = yield* t.append("flush", publication(1))
      yield* t.append("flush", publication(2))
      yield* waitFor("offsets 1-2", () => heard.received.length === 2)

      yield* Effect.promise(() => server.command("FLUSHALL"))
      const fresh = yield* t.append("flush", publication(3))
      expect(fresh.offset).toBe(1)
      expect(fresh.epoch).not.toBe(old.epoch)
      const stale = yield* t.read("flush", { epoch: old.epoch, offset: 2 }, 10)
      expect(stale).toEqual({
        entries: [],
        top: { epoch: fresh.epoch, offset: 1 },
        covered: false,
        reason: "epoch_changed"
      })

      yield* waitFor("the new epoch", () => heard.received.length === 3)
      expect(heard.received.map((e) => [e.epoch, e.offset])).toEqual([
        [old.epoch, 1],
        [old.epoch, 2],
        [fresh.epoch, 1]
      ])
    })
  )

  it.live("entries appended while the subscriber connection is down are delivered after it reconnects", () =>
    Effect.gen(function* () {
      const t = yield* Redis.make({ url: server.url, keyPrefix: prefix() })
      const channels = range(1, 50).map((i) => `blip-${i}`)
      const heard = new Map(channels.map((channel) => [channel, collector()]))
      for (const channel of channels) yield* t.listen(channel, heard.get(channel)!.listener)
      const all = (count: number) => () => [...heard.values()].every((c) => c.received.length >= count)
      for (const channel of channels) yield* t.append(channel, publication(1))
      yield* waitFor("offset 1 everywhere", all(1))

      // Redis drops every pub/sub connection; the command connection stays up, so these appends succeed but
      // their announcements reach nobody.
      yield* Effect.promise(() => server.command("CLIENT", "KILL", "TYPE", "pubsub"))
      for (let i = 2; i <= 10; i++) {
        yield* Effect.forEach(channels, (channel) => t.append(channel, publication(i)), { concurrency: 16 })
      }
      yield* waitFor("offsets 1-10 everywhere", all(10))
      yield* Effect.forEach(channels, (channel) => t.append(channel, publication(11)), { concurrency: 16 })
      yield* waitFor("offset 11 everywhere", all(11))
      yield* Effect.sleep(50)
      for (const collected of heard.values()) expect(offsets(collected.received)).toEqual(range(1, 11))
    })
  )

  it.live("appends made in the same tick share one script call; each gets its own entry, or its channel's error", () =>
    Effect.gen(function* () {
      const keyPrefix = prefix()
      const t = yield* Redis.make({ url: server.url, keyPrefix })
      const heard = collector()
      yield* t.listen("batched", heard.listener)
      yield* t.append("batched", publication(0))
      const scriptCalls = () =>
        Effect.promise(async () => {
          const stats = String(await server.command("INFO", "commandstats"))
          return Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0)
        })
      // The meta of "broken" is not a hash: its appends fail, and only its own.
      yield* Effect.promise(() => server.command("SET", channelKeys(keyPrefix, "broken").meta, "not a hash"))
      const before = yield* scriptCalls()
      const results = yield* Effect.forEach(
        range(1, 10),
        (i) =>
          Effect.exit(
            i === 10
              ? t.append("broken", publication(i))
              : t.append("batched", publication(i), { idempotencyKey: i % 3 === 0 ? "same" : `k${i}` })
          ),
        { concurrency: "unbounded" }
      )
      // One call for "batched", one for "broken" (plus the commandstats' own INFO, which is no script).
      expect((yield* scriptCalls()) - before).toBe(2)
      const entries = results.slice(0, 9).map((exit) => (Exit.isSuccess(exit) ? exit.value : undefined))
      // Keys k1, k2, "same" (i = 3; i = 6 and 9 return its entry), k4, k5, k7, k8: seven new offsets.
      expect(entries.map((e) => e?.offset)).toEqual([2, 3, 4, 5, 6, 4, 7, 8, 4])
      expect(entries[5]).toEqual({ ...entries[2], duplicate: true })
      expect(entries[8]).toEqual({ ...entries[2], duplicate: true })
      expect(entries[2]?.data).toBe(publication(3).data)
      const broken = results[9]!
      expect(Exit.isFailure(broken) && String(broken.cause)).toContain("WRONGTYPE")
      yield* waitFor("offsets 1-8", () => heard.received.length >= 8)
      expect(offsets(heard.received)).toEqual(range(1, 8))
      expect(offsets((yield* t.read("batched", undefined, 100)).entries)).toEqual(range(1, 8))
    })
  )

  it.live("serves pages from segments cut at any offset, and from the stream where a segment is missing or wrong", () =>
    Effect.gen(function* () {
      const keyPrefix = prefix()
      const t = yield* Redis.make({ url: server.url, keyPrefix })
      const keys = channelKeys(keyPrefix, "paged")
      yield* Effect.forEach(range(1, 350), (i) => t.append("paged", publication(i)), { concurrency: 16 })
      const { epoch } = yield* t.top("paged")
      const segment = (k: number) => `${keys.segments}${epoch}:${k}`
      expect(
        yield* Effect.promise(() => server.command("EXISTS", segment(0), segment(1), segment(2), segment(3)))
      ).toBe(4)
      const pagesRight = Effect.forEach([0, 1, 57, 99, 100, 101, 250, 349, 350], (since) =>
        Effect.forEach([1, 50, 1000], (limit) =>
          Effect.gen(function* () {
            const page = yield* t.read("paged", { epoch, offset: since }, limit)
            const wanted = range(since + 1, Math.min(350, since + limit))
            expect(offsets(page.entries), `since ${since}, limit ${limit}`).toEqual(wanted)
            expect(page.entries.map((e) => JSON.parse(e.data).i)).toEqual(wanted)
          })
        )
      )
      yield* pagesRight
      // a missing segment, then one that holds another segment's entries: the stream answers instead
      yield* Effect.promise(() => server.command("DEL", segment(1)))
      yield* pagesRight
      const third = yield* Effect.promise(() => server.command("GET", segment(3)))
      yield* Effect.promise(() => server.command("SET", segment(1), String(third)))
      yield* pagesRight
    })
  )

  it.live("drops segments wholly before the head as retention trims, and starts none mid-segment", () =>
    Effect.gen(function* () {
      const keyPrefix = prefix()
      const t = yield* Redis.make({
        url: server.url,
        keyPrefix,
        retention: () => ({ maxEntries: 150, maxAgeMs: Number.POSITIVE_INFINITY })
      })
      const keys = channelKeys(keyPrefix, "trimmed")
      yield* Effect.forEach(range(1, 1000), (i) => t.append("trimmed", publication(i)), { concurrency: 16 })
      const { epoch } = yield* t.top("trimmed")
      const held = yield* Effect.promise(() => server.command("KEYS", `${keys.segments}*`))
      // entries 851 to 1000 are left: segments 8 and 9
      expect((held as Array<string>).sort()).toEqual([`${keys.segments}${epoch}:8`, `${keys.segments}${epoch}:9`])
      expect(offsets((yield* t.read("trimmed", undefined, 1000)).entries)).toEqual(range(851, 1000))

      // a channel whose first entries were written without segments (as before them): appends from offset 121 on
      // start no segment until the next one begins, and reads across both kinds are whole
      const unlimited = yield* Redis.make({ url: server.url, keyPrefix })
      const before = channelKeys(keyPrefix, "before")
      for (const i of range(1, 120)) {
        yield* Effect.promise(() =>
          server.command(
            "EVAL",
            "local o = redis.call('HINCRBY', KEYS[1], 'top', 1) redis.call('HSET', KEYS[1], 'epoch', 'old') redis.call('XADD', KEYS[2], o .. '-0', ARGV[1], ARGV[2]) return o",
            2,
            before.meta,
            before.stream,
            encodeHeader(Date.now(), publication(i)),
            publication(i).data
          )
        )
      }
      yield* Effect.forEach(range(121, 320), (i) => unlimited.append("before", publication(i)), { concurrency: 16 })
      const started = yield* Effect.promise(() =>
        server.command("EXISTS", `${before.segments}old:1`, `${before.segments}old:2`, `${before.segments}old:3`)
      )
      expect(started).toBe(2)
      for (const since of [0, 99, 119, 150, 199, 200, 260]) {
        const page = yield* unlimited.read("before", { epoch: "old", offset: since }, 1000)
        expect(offsets(page.entries), `since ${since}`).toEqual(range(since + 1, 320))
      }
    })
  )

  it.effect("retention, the idempotency window and cursor expiry follow the caller's Clock (TestClock here)", () =>
    Effect.gen(function* () {
      const t = yield* Redis.make({
        url: server.url,
        keyPrefix: prefix(),
        retention: () => ({ maxEntries: 100, maxAgeMs: 1000 }),
        idempotencyWindowMs: 1000,
        cursorTtlMs: 1000
      })
      const first = yield* t.append("clock", publication(1), { idempotencyKey: "k" })
      yield* t.saveCursor("s", "clock", { epoch: first.epoch, offset: 1 })
      yield* TestClock.adjust(999)
      expect(yield* t.append("clock", publication(2), { idempotencyKey: "k" })).toEqual({ ...first, duplicate: true })
      expect((yield* t.loadCursors("s")).size).toBe(1)
      yield* TestClock.adjust(1)
      expect((yield* t.loadCursors("s")).size).toBe(0)
      const second = yield* t.append("clock", publication(3), { idempotencyKey: "k" })
      expect(second.offset).toBe(2)
      expect(offsets((yield* t.read("clock", undefined, 10)).entries)).toEqual([1, 2])
      yield* TestClock.adjust(1)
      // Entry 1 is now older than maxAgeMs: gone for readers even before an append trims it.
      expect(offsets((yield* t.read("clock", undefined, 10)).entries)).toEqual([2])
      expect((yield* t.read("clock", { epoch: first.epoch, offset: 0 }, 10)).reason).toBe("trimmed")
      expect(offsets((yield* t.read("clock", { epoch: first.epoch, offset: 1 }, 10)).entries)).toEqual([2])
    })
  )

  it.live(
    "a node sets a session's cursor key TTL once, not at every batched save; a re-created key and another node set it",
    () =>
      Effect.gen(function* () {
        const keyPrefix = prefix()
        const options = { url: server.url, keyPrefix, cursorTtlMs: 600_000 }
        const t = yield* Redis.make(options)
        const key = cursorKey(keyPrefix, "s")
        const pttl = Effect.promise(async () => Number(await server.command("PTTL", key)))
        const save = (transport: typeof t, offset: number) =>
          transport.saveCursors!([{ session: "s", channel: "c", position: { epoch: "e", offset } }])

        yield* save(t, 1)
        const first = yield* pttl
        // cursorTtlMs + the 60 s grace, less the time since the save
        expect(first).toBeGreaterThan(600_000 + 59_000)
        yield* Effect.sleep(1200)
        yield* save(t, 2)
        const second = yield* pttl
        expect(second, "the second save within 30 s left the TTL alone").toBeLessThanOrEqual(first - 1000)
        expect(toRecord(yield* t.loadCursors("s"))).toEqual({ c: { epoch: "e", offset: 2 } })

        // the key gone (a flush, an eviction, Redis back empty) while this node counts its TTL as set: the next save
        // makes a new key, and it gets a TTL all the same
        yield* Effect.promise(() => server.command("DEL", key))
        yield* save(t, 2)
        expect(yield* pttl, "a re-created key has a TTL").toBeGreaterThan(600_000 + 59_000)
        yield* Effect.sleep(1200)

        // another node has not set it: it does
        const other = yield* Redis.make(options)
        const before = yield* pttl
        yield* save(other, 3)
        expect(yield* pttl).toBeGreaterThan(before + 900)
        expect(toRecord(yield* t.loadCursors("s"))).toEqual({ c: { epoch: "e", offset: 3 } })
      })
  )

  it.live("a hung Redis makes commands fail after commandTimeoutMs instead of hanging", () =>
    Effect.gen(function* () {
      const t = yield* Redis.make({ url: server.url, keyPrefix: prefix(), commandTimeoutMs: 300 })
      yield* Effect.promise(() => server.command("CLIENT", "PAUSE", "1500", "ALL"))
      const started = Date.now()
      const error = yield* Effect.flip(t.top("paused"))
      expect(Date.now() - started).toBeLessThan(1000)
      expect(error).toBeInstanceOf(TransportError)
      expect(error.retryable).toBe(true)
      expect(yield* t.healthy).toBe(false)
      yield* waitFor("healthy after the pause", () => t.healthy, 5000)
      expect((yield* t.top("paused")).offset).toBe(0)
    })
  )

  it.live("start-up fails with one clear message naming the URL when Redis is unreachable", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(freePort)
      const url = `redis://user:secret@127.0.0.1:${port}`
      const exit = yield* Effect.exit(Layer.build(Redis.layer({ url })))
      expect(Exit.isFailure(exit)).toBe(true)
      const error = yield* Effect.flip(Effect.scoped(Redis.make({ url })))
      expect(error.message).toContain(`127.0.0.1:${port}`)
      expect(error.message).toContain("ECONNREFUSED")
      expect(error.message).not.toContain("secret")
      expect(error.retryable).toBe(true)
    })
  )

  it.live("layerConfig reads REDIS_URL", () =>
    Effect.gen(function* () {
      const top = yield* Transport.use((t) => t.top("configured")).pipe(
        Effect.provide(
          Redis.layerConfig({ keyPrefix: prefix() }).pipe(
            Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ REDIS_URL: server.url })))
          )
        )
      )
      expect(top.offset).toBe(0)
      const missing = yield* Effect.exit(
        Layer.build(Redis.layerConfig().pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({})))))
      )
      expect(Exit.isFailure(missing)).toBe(true)
    })
  )

  it.live(
    "Redis stopped for 2.5 s: appends fail fast and retryably, healthy is false, then everything resumes",
    () =>
      Effect.gen(function* () {
        const own = yield* redisServerScoped(binary!)
        const t = yield* Redis.make({ url: own.url, keyPrefix: prefix() })
        const heard = collector()
        yield* t.listen("outage", heard.listener)
        for (let i = 1; i <= 3; i++) yield* t.append("outage", publication(i))
        yield* waitFor("offsets 1-3", () => heard.received.length === 3)
        expect(yield* t.healthy).toBe(true)

        // Saved on the way down, so the restart is a blip (same epoch), not a loss.
        yield* Effect.promise(() => own.stop({ persist: true }))
        const deadline = Date.now() + 2500
        let failures = 0
        while (Date.now() < deadline) {
          const started = Date.now()
          const error = yield* Effect.flip(t.append("outage", publication(100)))
          expect(Date.now() - started).toBeLessThan(1000)
          expect(error).toBeInstanceOf(TransportError)
          expect(error.retryable).toBe(true)
          expect(error.message).toContain(own.url)
          failures++
          expect(yield* t.healthy).toBe(false)
          yield* Effect.sleep(100)
        }
        expect(failures).toBeGreaterThan(5)
        const readError = yield* Effect.flip(t.read("outage", undefined, 10))
        expect(readError.retryable).toBe(true)
        expect((yield* Effect.flip(t.saveCursor("s", "outage", { epoch: "e", offset: 1 }))).retryable).toBe(true)

        yield* Effect.promise(() => own.restart())
        // The first appends after the restart may race the reconnect; a publisher retries them.
        const appendRetrying = (i: number) =>
          t.append("outage", publication(i)).pipe(
            Effect.catch((error) =>
              error.retryable ? Effect.sleep(50).pipe(Effect.andThen(Effect.fail(error))) : Effect.die(error)
            ),
            Effect.retry({ times: 200 })
          )
        for (let i = 4; i <= 10; i++) yield* appendRetrying(i)
        yield* waitFor("healthy again", () => t.healthy)
        yield* waitFor("offsets 1-10", () => heard.received.length >= 10)
        yield* Effect.sleep(100)
        expect(offsets(heard.received)).toEqual(range(1, 10))
        expect(new Set(heard.received.map((e) => e.epoch)).size).toBe(1)
        expect(heard.received.map((e) => e.data)).toEqual(range(1, 10).map((i) => publication(i).data))
      }),
    30_000
  )

  it.live(
    "Redis crashes and comes back empty: listeners receive the new epoch's entries without re-creating the transport",
    () =>
      Effect.gen(function* () {
        const own = yield* redisServerScoped(binary!)
        const t = yield* Redis.make({ url: own.url, keyPrefix: prefix() })
        const heard = collector()
        yield* t.listen("crash", heard.listener)
        const old = yield* t.append("crash", publication(1))
        yield* waitFor("offset 1", () => heard.received.length === 1)

        yield* Effect.promise(() => own.kill())
        yield* Effect.sleep(500)
        expect(yield* t.healthy).toBe(false)
        yield* Effect.promise(() => own.restart())
        yield* waitFor("healthy again", () => t.healthy)
        const fresh = yield* t.append("crash", publication(2))
        yield* t.append("crash", publication(3))
        expect(fresh.epoch).not.toBe(old.epoch)
        expect(fresh.offset).toBe(1)
        yield* waitFor("the new epoch", () => heard.received.length >= 3)
        yield* Effect.sleep(50)
        expect(heard.received.map((e) => [e.epoch, e.offset])).toEqual([
          [old.epoch, 1],
          [fresh.epoch, 1],
          [fresh.epoch, 2]
        ])
      }),
    30_000
  )
})
