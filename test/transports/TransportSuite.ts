/**
 * The transport conformance suite: every transport (memory, Redis, NATS) runs `suite(name, layer)` unchanged.
 *
 * It owns the observable contract of src/transports/Transport.ts — positions, coverage, retention, the live
 * feed, idempotency and cursors — and nothing backend-specific (connections, key layouts, server restarts),
 * which belongs beside each backend's own test file. The layer is built once per suite with the real clock,
 * because remote backends compare times with their server's clock; every test uses its own random channel
 * and session names, so tests never share keys or subjects. Live deliveries are awaited with real timeouts, so
 * the same tests hold for synchronous (memory) and networked (Redis, NATS) feeds.
 */
import { randomUUID } from "node:crypto"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Exit, type Layer, Scope } from "effect"
import type { Position } from "../../src/protocol/Position.ts"
import {
  defaultRetention,
  type Entry,
  type Publication,
  type Retention,
  Transport,
  type TransportOptions
} from "../../src/transports/Transport.ts"

/** What a transport can or cannot let the suite check. */
export interface SuiteCapabilities<R = never> {
  /**
   * Maximum age used by the age-retention test, which waits for real (about twice this long). `false` skips the
   * test visibly, for a backend that cannot trim by age at that granularity. Default 300 ms.
   */
  readonly ageRetentionMs?: number | false
  /**
   * Simulates losing a channel's log, so the next append starts a new epoch at offset 1. When given, the suite
   * checks what readers and listeners see across an epoch change; `R` is whatever service it needs, which the
   * layer must also provide.
   */
  readonly resetChannel?: (channel: string) => Effect.Effect<void, unknown, R>
  /** How long to wait for a live entry to reach a listener before failing. Default 5 s. */
  readonly deliveryTimeoutMs?: number
  /** How long to wait before concluding that an entry will NOT be delivered. Default 100 ms. */
  readonly settleMs?: number
}

/** Retention of channels whose name contains `-retain5-`. */
export const smallRetention: Retention = { maxEntries: 5, maxAgeMs: defaultRetention.maxAgeMs }

/**
 * Registers the conformance suite for one transport. `makeLayer` receives the options the suite needs (a
 * retention chosen by channel name) and must honour them.
 */
export const suite = <E, R = never>(
  name: string,
  makeLayer: (options: TransportOptions) => Layer.Layer<Transport | R, E>,
  capabilities: SuiteCapabilities<R> = {}
): void => {
  const ageMs = capabilities.ageRetentionMs ?? 300
  const deliveryTimeoutMs = capabilities.deliveryTimeoutMs ?? 5000
  const settleMs = capabilities.settleMs ?? 100
  const agedRetention: Retention = { maxEntries: defaultRetention.maxEntries, maxAgeMs: ageMs === false ? 1 : ageMs }

  const options: TransportOptions = {
    retention: (channel) =>
      channel.includes("-retain5-") ? smallRetention : channel.includes("-aged-") ? agedRetention : defaultRetention
  }

  describe(`Transport conformance: ${name}`, () => {
    layer(makeLayer(options), { excludeTestServices: true })((it) => {
      it.effect("assigns contiguous offsets from 1 in one epoch and keeps the publication", () =>
        Effect.gen(function* () {
          const t = yield* Transport
          const channel = names().channel("contiguous")
          const appended: Array<Entry> = []
          for (let i = 1; i <= 5; i++) appended.push(yield* t.append(channel, publication(i)))
          expect(appended.map((e) => e.offset)).toEqual([1, 2, 3, 4, 5])
          const epoch = appended[0]!.epoch
          expect(epoch.length).toBeGreaterThan(0)
          for (const [i, entry] of appended.entries()) {
            expect(entry).toEqual({ ...publication(i + 1), channel, epoch, offset: i + 1 })
          }
          expect(yield* t.top(channel)).toEqual({ epoch, offset: 5 })
        })
      )

      it.effect("concurrent appends to one channel yield a permutation of 1..N", () =>
        Effect.gen(function* () {
          const t = yield* Transport
          const channel = names().channel("concurrent")
          const n = 100
          const ids = Array.from({ length: n }, (_, i) => i + 1)
          const entries = yield* Effect.forEach(ids, (i) => t.append(channel, publication(i)), {
            concurrency: "unbounded"
          })
          const offsets = entries.map((e) => e.offset).sort((a, b) => a - b)
          expect(offsets).toEqual(ids)
          expect(new Set(entries.map((e) => e.epoch)).size).toBe(1)
          // History agrees with what each append was told: the data stored at each offset is the one appended there.
          const read = yield* t.read(channel, undefined, n * 2)
          expect(read.entries.map((e) => e.offset)).toEqual(ids)
          const dataAt = new Map(entries.map((e) => [e.offset, e.data]))
          for (const entry of read.entries) expect(entry.data).toBe(dataAt.get(entry.offset))
          expect(read.top).toEqual({ epoch: entries[0]!.epoch, offset: n })
        })
      )

      it.effect("reads exactly the entries after a position, in order, at most limit", () =>
        Effect.gen(function* () {
          const t = yield* Transport
          const channel = names().channel("read-since")
          const epoch = yield* appendMany(channel, 10)
          const all = yield* t.read(channel, { epoch, offset: 3 }, 100)
          expect(all.covered).toBe(true)
          expect(all.reason).toBeUndefined()
          expect(all.entries.map((e) => e.offset)).toEqual([4, 5, 6, 7, 8, 9, 10])
          expect(all.entries.map((e) => e.data)).toEqual([4, 5, 6, 7, 8, 9, 10].map((i) => publication(i).data))
          expect(all.top).toEqual({ epoch, offset: 10 })

          const limited = yield* t.read(channel, { epoch, offset: 3 }, 4)
          expect(limited.covered).toBe(true)
          expect(limited.entries.map((e) => e.offset)).toEqual([4, 5, 6, 7])
          expect(limited.top).toEqual({ epoch, offset: 10 })

          const atTop = yield* t.read(channel, { epoch, offset: 10 }, 100)
          expect(atTop).toEqual({ entries: [], top: { epoch, offset: 10 }, covered: true })

          const fromStart = yield* t.read(channel, { epoch, offset: 0 }, 2)
          expect(fromStart.covered).toBe(true)
          expect(fromStart.entries.map((e) => e.offset)).toEqual([1, 2])
        })
      )

      it.effect("reads from the oldest retained entry when since is undefined", () =>
        Effect.gen(function* () {
          const t = yield* Transport
          const channel = names().channel("read-undefined")
          const epoch = yield* appendMany(channel, 6)
          const all = yield* t.read(channel, undefined, 100)
          expect(all.covered).toBe(true)
          expect(all.entries.map((e) => e.offset)).toEqual([1, 2, 3, 4, 5, 6])
          expect(all.top).toEqual({ epoch, offset: 6 })
          const limited = yield* t.read(channel, undefined, 2)
          expect(limited.entries.map((e) => e.offset)).toEqual([1, 2])
        })
      )

      it.effect(
        "a read from the start that races a new channel's first appends returns every entry up to its top",
        () =>
          Effect.gen(function* () {
            const t = yield* Transport
            // the read finds the channel empty, then learns its top while appends land: it must not report a top
            // above the entries it returns (a subscriber would start after entries it never received)
            for (let round = 0; round < 20; round++) {
              const channel = names().channel("read-race")
              const [read] = yield* Effect.all(
                [t.read(channel, undefined, 100), Effect.forEach([1, 2, 3], (i) => t.append(channel, publication(i)))],
                { concurrency: "unbounded" }
              )
              expect(read.covered).toBe(true)
              expect(read.entries.map((e) => e.offset)).toEqual(
                Array.from({ length: read.top.offset }, (_, i) => i + 1)
              )
            }
          })
      )

      it.effect("a position from another epoch is not covered (epoch_changed)", () =>
        Effect.gen(function* () {
          const t = yield* Transport
          const channel = names().channel("other-epoch")
          const epoch = yield* appendMany(channel, 3)
          // Same length as the real epoch, so it stays a valid Position (epochs are at most 64 characters).
          const stale: Position = { epoch: (epoch.startsWith("x") ? "y" : "x") + epoch.slice(1), offset: 1 }
          const result = yield* t.read(channel, stale, 100)
          expect(result).toEqual({ entries: [], top: { epoch, offset: 3 }, covered: false, reason: "epoch_changed" })
        })
      )

      it.effect("a position whose successor was trimmed is not covered; the trim boundary still is", () =>
        Effect.gen(function* () {
          const t = yield* Transport
          const channel = names().retain5("trimmed")
          const epoch = yield* appendMany(channel, 8)
          const top = { epoch, offset: 8 }

          const retained = yield* t.read(channel, undefined, 100)
          expect(retained.covered).toBe(true)
          expect(retained.entries.map((e) => e.offset)).toEqual([4, 5, 6, 7, 8])
          expect(retained.top).toEqual(top)

          const boundary = yield* t.read(channel, { epoch, offset: 3 }, 100)
          expect(boundary.covered).toBe(true)
          expect(boundary.entries.map((e) => e.offset)).toEqual([4, 5, 6, 7, 8])

          expect(yield* t.read(channel, { epoch, offset: 2 }, 100)).toEqual({
            entries: [],
            top,
            covered: false,
            reason: "trimmed"
          })
          expect(yield* t.read(channel, { epoch, offset: 0 }, 100)).toEqual({
            entries: [],
            top,
            covered: false,
            reason: "trimmed"
          })
          expect(yield* t.read(channel, top, 100)).toEqual({ entries: [], top, covered: true })
        })
      )

      it.effect("top of an empty channel is offset 0 in a stable epoch that the first append uses", () =>
        Effect.gen(function* () {
          const t = yield* Transport
          const channel = names().channel("empty")
          const first = yield* t.top(channel)
          expect(first.offset).toBe(0)
          expect(first.epoch.length).toBeGreaterThan(0)
          expect(yield* t.top(channel)).toEqual(first)

          const empty = yield* t.read(channel, undefined, 10)
          expect(empty).toEqual({ entries: [], top: first, covered: true })
          expect(yield* t.read(channel, first, 10)).toEqual({ entries: [], top: first, covered: true })

          const entry = yield* t.append(channel, publication(1))
          expect(entry.epoch).toBe(first.epoch)
          expect(entry.offset).toBe(1)
        })
      )

      it.effect("a listener receives every entry appended after registration, in order, until its scope closes", () =>
        Effect.gen(function* () {
          const t = yield* Transport
          const channel = names().channel("listen")
          yield* appendMany(channel, 2)

          const scope = yield* Scope.make()
          const closed = collector()
          yield* Scope.provide(scope)(t.listen(channel, closed.listener))
          // Still registered after this test's first phase: proves later appends were delivered somewhere.
          const witness = collector()
          yield* t.listen(channel, witness.listener)

          yield* appendMany(channel, 30, 3)
          yield* awaitCount(closed, 30)
          expect(closed.received.map((e) => e.offset)).toEqual(range(3, 32))
          expect(closed.received.map((e) => e.data)).toEqual(range(3, 32).map((i) => publication(i).data))
          expect(closed.received.every((e) => e.channel === channel)).toBe(true)

          yield* Scope.close(scope, Exit.void)
          yield* appendMany(channel, 3, 33)
          yield* awaitCount(witness, 33)
          yield* Effect.sleep(settleMs)
          expect(closed.received.length).toBe(30)
          expect(witness.received.map((e) => e.offset)).toEqual(range(3, 35))
        })
      )

      it.effect("two listeners on one channel both receive everything", () =>
        Effect.gen(function* () {
          const t = yield* Transport
          const channel = names().channel("two-listeners")
          const a = collector()
          const b = collector()
          yield* t.listen(channel, a.listener)
          yield* t.listen(channel, b.listener)
          yield* appendMany(channel, 20)
          yield* awaitCount(a, 20)
          yield* awaitCount(b, 20)
          expect(a.received.map((e) => e.offset)).toEqual(range(1, 20))
          expect(b.received).toEqual(a.received)
        })
      )

      it.effect("listeners on different channels are isolated", () =>
        Effect.gen(function* () {
          const t = yield* Transport
          const n = names()
          const left = n.channel("left")
          const right = n.channel("right")
          const onLeft = collector()
          const onRight = collector()
          yield* t.listen(left, onLeft.listener)
          yield* t.listen(right, onRight.listener)
          yield* appendMany(left, 3)
          yield* appendMany(right, 2)
          yield* awaitCount(onLeft, 3)
          yield* awaitCount(onRight, 2)
          yield* Effect.sleep(settleMs)
          expect(onLeft.received.map((e) => [e.channel, e.offset])).toEqual([
            [left, 1],
            [left, 2],
            [left, 3]
          ])
          expect(onRight.received.map((e) => [e.channel, e.offset])).toEqual([
            [right, 1],
            [right, 2]
          ])
        })
      )

      it.effect("an idempotency key returns the original entry, marked duplicate, and appends nothing", () =>
        Effect.gen(function* () {
          const t = yield* Transport
          const channel = names().channel("idempotent")
          const heard = collector()
          yield* t.listen(channel, heard.listener)
          const key = `key-${randomUUID()}`
          const first = yield* t.append(channel, publication(1), { idempotencyKey: key })
          const retried = yield* t.append(channel, publication(2), { idempotencyKey: key })
          expect(first.duplicate).toBeUndefined()
          expect(retried).toEqual({ ...first, duplicate: true })
          expect((yield* t.top(channel)).offset).toBe(1)

          const other = yield* t.append(channel, publication(3), { idempotencyKey: `${key}-other` })
          expect(other.offset).toBe(2)
          const plain = yield* t.append(channel, publication(4))
          expect(plain.offset).toBe(3)

          const read = yield* t.read(channel, undefined, 100)
          expect(read.entries.map((e) => [e.offset, e.data])).toEqual([
            [1, publication(1).data],
            [2, publication(3).data],
            [3, publication(4).data]
          ])
          yield* awaitCount(heard, 3)
          yield* Effect.sleep(settleMs)
          expect(heard.received.map((e) => e.offset)).toEqual([1, 2, 3])
        })
      )

      /** The transport, and two sessions and two channels of names of their own. */
      const cursorCase = Effect.gen(function* () {
        const t = yield* Transport
        const n = names()
        return { t, n, alice: n.session("alice"), bob: n.session("bob"), a: n.channel("a"), b: n.channel("b") }
      })

      it.effect("cursors are saved, loaded and overwritten per session, and sessions are isolated", () =>
        Effect.gen(function* () {
          const { t, n, alice, bob, a, b } = yield* cursorCase

          expect((yield* t.loadCursors(alice)).size).toBe(0)
          yield* t.saveCursor(alice, a, { epoch: "e1", offset: 3 })
          yield* t.saveCursor(alice, b, { epoch: "e2", offset: 7 })
          yield* t.saveCursor(bob, a, { epoch: "e1", offset: 1 })
          expect(toRecord(yield* t.loadCursors(alice))).toEqual({
            [a]: { epoch: "e1", offset: 3 },
            [b]: { epoch: "e2", offset: 7 }
          })

          yield* t.saveCursor(alice, a, { epoch: "e3", offset: 9 })
          expect(toRecord(yield* t.loadCursors(alice))).toEqual({
            [a]: { epoch: "e3", offset: 9 },
            [b]: { epoch: "e2", offset: 7 }
          })
          expect(toRecord(yield* t.loadCursors(bob))).toEqual({ [a]: { epoch: "e1", offset: 1 } })
          expect((yield* t.loadCursors(n.session("nobody"))).size).toBe(0)
        })
      )

      it.effect("cursors saved in a batch: several sessions and channels at once, the later of two writes wins", () =>
        Effect.gen(function* () {
          const { t, alice, bob, a, b } = yield* cursorCase
          yield* t.saveCursor(alice, b, { epoch: "e0", offset: 1 })
          // the built-in transports all save in batches (it is optional for others)
          const save = t.saveCursors
          expect(save, "saveCursors").toBeDefined()
          yield* save!([])
          yield* save!([
            { session: alice, channel: a, position: { epoch: "e1", offset: 3 } },
            { session: bob, channel: a, position: { epoch: "e1", offset: 1 } },
            // a channel name that is an object's prototype key elsewhere
            { session: bob, channel: "__proto__", position: { epoch: "e9", offset: 2 } },
            { session: alice, channel: b, position: { epoch: "e2", offset: 7 } },
            { session: alice, channel: a, position: { epoch: "e1", offset: 4 } }
          ])
          expect(toRecord(yield* t.loadCursors(alice))).toEqual({
            [a]: { epoch: "e1", offset: 4 },
            [b]: { epoch: "e2", offset: 7 }
          })
          expect(toRecord(yield* t.loadCursors(bob))).toEqual({
            [a]: { epoch: "e1", offset: 1 },
            ["__proto__"]: { epoch: "e9", offset: 2 }
          })
        })
      )

      it.effect("presence: members join and leave once, even raced; a lapsed node's members are swept once", () =>
        Effect.gen(function* () {
          const presence = (yield* Transport).presence
          expect(presence, "the transport has a presence store").toBeDefined()
          const p = presence!
          const n = names()
          const [room, hall] = [n.channel("room"), n.channel("hall")]
          const [live, dead] = [n.session("live"), n.session("dead")]
          const member = (id: string, user: string | null) => ({ id: n.session(id), user, session: `s-${id}` })
          const users = (list: ReadonlyArray<{ user: string | null }>) => list.map((m) => m.user).sort()
          const later = () => Date.now() + 60_000

          expect(yield* p.heartbeat(live, later())).toBe(true)
          expect(yield* p.heartbeat(live, later())).toBe(false)
          yield* p.heartbeat(dead, later())
          yield* p.join(room, { ...member("a", "ann"), info: { name: "Ann" } }, live)
          yield* p.join(room, member("b", "bob"), live)
          yield* p.join(room, member("c", null), dead)
          yield* p.join(hall, member("d", "dan"), dead)
          const listed = yield* p.list(room)
          expect(users(listed)).toEqual(["ann", "bob", null])
          expect(listed.find((m) => m.user === "ann")).toEqual({ ...member("a", "ann"), info: { name: "Ann" } })

          // a leave raced by another leave of the same member is reported to one of them
          const raced = yield* Effect.all([p.leave(room, n.session("b")), p.leave(room, n.session("b"))], {
            concurrency: 2
          })
          expect(raced.filter((m) => m !== undefined).map((m) => m?.user)).toEqual(["bob"])
          expect(yield* p.leave(room, n.session("nobody"))).toBeUndefined()

          // the dead node's heartbeat lapses: its members are no longer listed, and two racing sweeps remove
          // each of them once
          yield* p.heartbeat(dead, Date.now() - 1)
          expect(users(yield* p.list(room))).toEqual(["ann"])
          const now = Date.now()
          const swept = (yield* Effect.all([p.sweep(now), p.sweep(now)], { concurrency: 2 })).flat()
          expect(swept.map((r) => `${r.channel === room ? "room" : "hall"} ${r.member.id}`).sort()).toEqual([
            `hall ${n.session("d")}`,
            `room ${n.session("c")}`
          ])
          expect(users(yield* p.list(room))).toEqual(["ann"])
          expect(yield* p.list(hall)).toEqual([])
          // a swept node is told at its next heartbeat, so it writes its members again
          expect(yield* p.heartbeat(dead, later())).toBe(true)
          expect((yield* p.leave(room, n.session("a")))?.user).toBe("ann")
        })
      )

      it.effect("is healthy", () =>
        Effect.gen(function* () {
          const t = yield* Transport
          expect(yield* t.healthy).toBe(true)
        })
      )

      const ageTest = ageMs === false ? it.effect.skip : it.effect
      ageTest(`drops entries older than maxAgeMs (${ageMs === false ? "skipped" : `${ageMs} ms, real waits`})`, () =>
        Effect.gen(function* () {
          const t = yield* Transport
          const channel = names().aged("age")
          const epoch = yield* appendMany(channel, 3)
          yield* Effect.sleep(agedRetention.maxAgeMs * 2 + 50)
          yield* t.append(channel, publication(4))
          const top = { epoch, offset: 4 }

          const retained = yield* t.read(channel, undefined, 100)
          expect(retained.covered).toBe(true)
          expect(retained.entries.map((e) => e.offset)).toEqual([4])
          expect(retained.top).toEqual(top)
          expect(yield* t.read(channel, { epoch, offset: 0 }, 100)).toEqual({
            entries: [],
            top,
            covered: false,
            reason: "trimmed"
          })
          const boundary = yield* t.read(channel, { epoch, offset: 3 }, 100)
          expect(boundary.covered).toBe(true)
          expect(boundary.entries.map((e) => e.offset)).toEqual([4])
        })
      )

      const resetChannel = capabilities.resetChannel
      const resetTest = resetChannel === undefined ? it.effect.skip : it.effect
      resetTest("after the log is lost, offsets restart at 1 in a new epoch that readers and listeners see", () =>
        Effect.gen(function* () {
          const t = yield* Transport
          const channel = names().channel("reset")
          const heard = collector()
          yield* t.listen(channel, heard.listener)
          const oldEpoch = yield* appendMany(channel, 3)
          yield* awaitCount(heard, 3)

          yield* resetChannel!(channel)
          const entry = yield* t.append(channel, publication(4))
          expect(entry.offset).toBe(1)
          expect(entry.epoch).not.toBe(oldEpoch)
          expect(yield* t.top(channel)).toEqual({ epoch: entry.epoch, offset: 1 })

          expect(yield* t.read(channel, { epoch: oldEpoch, offset: 3 }, 100)).toEqual({
            entries: [],
            top: { epoch: entry.epoch, offset: 1 },
            covered: false,
            reason: "epoch_changed"
          })
          const fresh = yield* t.read(channel, undefined, 100)
          expect(fresh.entries).toEqual([entry])

          yield* awaitCount(heard, 4)
          expect(heard.received.map((e) => [e.epoch, e.offset])).toEqual([
            [oldEpoch, 1],
            [oldEpoch, 2],
            [oldEpoch, 3],
            [entry.epoch, 1]
          ])
        })
      )
    })
  })

  /** Appends `count` publications numbered from `from`; returns the epoch they went to. */
  const appendMany = (channel: string, count: number, from = 1) =>
    Effect.gen(function* () {
      const t = yield* Transport
      let epoch = ""
      for (let i = from; i < from + count; i++) epoch = (yield* t.append(channel, publication(i))).epoch
      return epoch
    })

  const awaitCount = (collected: Collector, count: number) =>
    Effect.gen(function* () {
      while (collected.received.length < count) yield* Effect.sleep(2)
    }).pipe(
      Effect.timeoutOrElse({
        duration: deliveryTimeoutMs,
        orElse: () =>
          Effect.die(
            new Error(
              `${name}: a listener received ${collected.received.length} of ${count} entries within ${deliveryTimeoutMs} ms`
            )
          )
      })
    )
}

interface Collector {
  readonly received: Array<Entry>
  readonly listener: (entry: Entry) => void
}

const collector = (): Collector => {
  const received: Array<Entry> = []
  return { received, listener: (entry) => void received.push(entry) }
}

/** Fresh names for one test. Only `[a-z0-9-]`, so every backend can use them as keys or subject tokens. */
const names = () => {
  const prefix = `tidings-test-${randomUUID().replaceAll("-", "").slice(0, 12)}`
  return {
    channel: (label: string) => `${prefix}-${label}`,
    retain5: (label: string) => `${prefix}-retain5-${label}`,
    aged: (label: string) => `${prefix}-aged-${label}`,
    session: (label: string) => `${prefix}-session-${label}`
  }
}

const publication = (i: number): Publication => ({
  event: i % 2 === 0 ? "even" : "odd",
  data: JSON.stringify({ i, text: `message ${i}` }),
  version: 1 + (i % 3),
  time: 1_700_000_000_000 + i
})

const range = (from: number, to: number): Array<number> => Array.from({ length: to - from + 1 }, (_, i) => from + i)

const toRecord = (cursors: ReadonlyMap<string, Position>): Record<string, Position> => Object.fromEntries(cursors)
