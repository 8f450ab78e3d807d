/**
 * Hostile input: 10,000+ malformed or malicious frames from a seeded generator — invalid JSON, wrong types,
 * huge strings, deep nesting, unknown frames and commands, forged positions, another user's channel, binary
 * garbage. Every frame is answered (an error frame, or for a forged position a reset) or refused, the server
 * stays up, its heap returns to baseline, and a well-behaved client on the same server receives every one of
 * its events in order throughout.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { TidingsServer } from "../../src/server/Server.ts"
import { settledHeap } from "../support/gc.ts"
import { connectRaw, type RawClient } from "./support/rawClient.ts"
import { connect, subscribe, unique } from "./support/session.ts"
import { sign, testServerLayer } from "./support/testServer.ts"

/** mulberry32: a small seeded PRNG so a failure can be replayed. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const SEED = Number(process.env.FUZZ_SEED ?? 20261123)
const FRAMES = Number(process.env.FUZZ_FRAMES ?? 10_000)

type Hostile = { readonly kind: string; readonly frame: string | Buffer; readonly expect: "error" | "reset" }

const generator = (random: () => number, epoch: string) => {
  const pick = <T>(xs: ReadonlyArray<T>): T => xs[Math.floor(random() * xs.length)]!
  const str = (n: number) =>
    Array.from({ length: n }, () => String.fromCharCode(32 + Math.floor(random() * 90))).join("")
  const deep = (depth: number) => "[".repeat(depth) + "]".repeat(depth)
  const makers: Array<() => Hostile> = [
    () => ({ kind: "invalid json", frame: `{"type":"subscribe",${str(8)}`, expect: "error" }),
    () => ({ kind: "not an object", frame: pick(["42", '"hi"', "null", "[]", "true"]), expect: "error" }),
    () => ({ kind: "unknown frame", frame: JSON.stringify({ type: str(6) }), expect: "error" }),
    () => ({
      kind: "wrong types",
      frame: JSON.stringify({ type: "subscribe", channel: pick([1, null, {}, [], true]) }),
      expect: "error"
    }),
    () => ({
      kind: "bad ack",
      frame: JSON.stringify({ type: "ack", channel: "room:x", epoch: 5, offset: -1 }),
      expect: "error"
    }),
    () => ({
      kind: "huge string",
      frame: JSON.stringify({ type: "subscribe", channel: "x".repeat(70_000) }),
      expect: "error"
    }),
    () => ({
      kind: "deep nesting",
      frame: `{"type":"command","id":"d","name":"send","payload":${deep(2000)}}`,
      expect: "error"
    }),
    () => ({
      kind: "unknown command",
      frame: JSON.stringify({ type: "command", id: str(5), name: str(7), payload: {} }),
      expect: "error"
    }),
    () => ({
      kind: "bad payload",
      frame: JSON.stringify({ type: "command", id: str(5), name: "send", payload: { channel: 7, body: [] } }),
      expect: "error"
    }),
    () => ({
      kind: "another user's channel",
      frame: JSON.stringify({ type: "subscribe", channel: `user:victim-${Math.floor(random() * 100)}` }),
      expect: "error"
    }),
    () => ({
      kind: "forged position",
      frame: JSON.stringify({
        type: "subscribe",
        channel: `room:fuzz-${Math.floor(random() * 20)}`,
        since: { epoch, offset: 1_000_000 + Math.floor(random() * 1e9) }
      }),
      expect: "reset"
    }),
    () => ({
      kind: "binary garbage",
      frame: Buffer.from(Array.from({ length: 64 }, () => Math.floor(random() * 256))),
      expect: "error"
    }),
    () => ({
      kind: "ack not subscribed",
      frame: JSON.stringify({ type: "ack", channel: "room:nowhere", epoch: "e", offset: 1 }),
      expect: "error"
    })
  ]
  return () => pick(makers)()
}

const fuzzLimits = {
  commandsPerSecond: 1_000_000,
  commandBurst: 1_000_000,
  maxSubscriptions: 1_000_000,
  maxFrameBytes: 64 * 1024,
  maxPayloadBytes: 256 * 1024,
  maxOutboundBytes: 64 * 1024 * 1024
}

layer(testServerLayer({ limits: fuzzLimits }), { excludeTestServices: true })("fuzz", (it) => {
  it.effect(`answers ${FRAMES} hostile frames (seed ${SEED}) and keeps serving a good client in order`, () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const channel = unique("room")
      const good = yield* connect(server.url)
      const epoch = (yield* subscribe(good, channel)).position as { epoch: string }
      // warm up every code path (JIT, schema caches) with a short attack, then take the heap baseline
      const warm = yield* connect(server.url, { sub: "attacker", channels: ["room:*"] })
      const warmup = generator(prng(SEED + 1), epoch.epoch)
      for (let i = 0; i < 2000; i++) warm.ws.send(warmup().frame)
      yield* Effect.promise(() => warm.next((f) => f.type === "error" && warm.frames.length >= 1500, 20_000))
      warm.close()
      yield* Effect.promise(() => warm.closed)
      warm.frames.length = 0
      const baseline = yield* Effect.promise(settledHeap)

      const attacker: RawClient = yield* Effect.promise(async () => {
        const c = await connectRaw(server.url)
        c.send({ type: "authenticate", token: await sign({ sub: "attacker", channels: ["room:*"] }) })
        await c.next((f) => f.type === "welcome")
        return c
      })
      const next = generator(prng(SEED), epoch.epoch)
      const sent = { error: 0, reset: 0 }
      const kinds = new Map<string, number>()
      let published = 0
      for (let i = 0; i < FRAMES; i++) {
        const hostile = next()
        attacker.ws.send(hostile.frame)
        sent[hostile.expect]++
        kinds.set(hostile.kind, (kinds.get(hostile.kind) ?? 0) + 1)
        if (i % 100 === 0) {
          published++
          yield* server.publishUnknown(channel, "tick", { n: published })
        }
        if (i % 500 === 0) yield* Effect.sleep("1 millis") // let the server breathe like a real socket would
      }
      yield* Effect.promise(() =>
        attacker.next(() => attacker.frames.filter((f) => f.type === "error").length >= sent.error, 30_000)
      )
      yield* Effect.promise(() =>
        attacker.next(() => attacker.frames.filter((f) => f.type === "reset").length >= sent.reset, 30_000)
      )
      const errors = attacker.frames.filter((f) => f.type === "error")
      const resets = attacker.frames.filter((f) => f.type === "reset")
      expect(errors.length).toBe(sent.error)
      expect(resets.length).toBe(sent.reset)
      expect(resets.every((r) => r.reason === "unknown_position" || r.reason === "epoch_changed")).toBe(true)
      expect(attacker.frames.filter((f) => f.type === "event")).toEqual([])
      const codes = new Set(errors.map((e) => e.code))
      expect([...codes].every((c) => typeof c === "string")).toBe(true)
      expect(codes).toContain("bad_json")
      expect(codes).toContain("forbidden")
      expect(codes).toContain("frame_too_large")
      expect(attacker.ws.readyState).toBe(1)

      // the good client saw every event, in order, with no gap
      yield* Effect.promise(() => good.next((f) => f.type === "event" && f.offset === published, 10_000))
      expect(good.events(channel).map((e) => e.offset)).toEqual(Array.from({ length: published }, (_, i) => i + 1))

      attacker.close()
      yield* Effect.promise(() => attacker.closed)
      attacker.frames.length = 0 // the test's own record of replies is not the server's memory
      yield* Effect.sleep("2500 millis") // closed sockets are force-terminated 2 s after the close frame
      const after = yield* Effect.promise(settledHeap)
      console.log(
        `fuzz: ${FRAMES} frames (${[...kinds].map(([k, n]) => `${k} ${n}`).join(", ")}); ` +
          `heap ${(baseline / 1e6).toFixed(1)} MB -> ${(after / 1e6).toFixed(1)} MB`
      )
      expect(after - baseline).toBeLessThan(4 * 1024 * 1024)
      expect(server.connections()).toBe(1)
      good.close()
    })
  )
})
