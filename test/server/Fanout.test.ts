/**
 * Subscription on its own (no sockets): live entries buffered during replay are merged without gap or
 * duplicate, an epoch change and an unfillable gap in the live feed are each announced with a reset; in the compact
 * envelope, an alias frame comes before the first event and again when the epoch or alias changes. Hub: replay
 * frames are kept for others only while two subscriptions replay the same channel; channel aliases are reused.
 */
import { Deferred, Effect } from "effect"
import { describe, expect, it } from "vitest"
import type { ResetReason } from "../../src/protocol/Frames.ts"
import type { Position } from "../../src/protocol/Position.ts"
import { ProtocolCodec } from "../../src/protocol/ProtocolCodec.ts"
import { EntryFrames, Hub, Subscription } from "../../src/server/fanout/Fanout.ts"
import { Outbound } from "../../src/server/outbound/Outbound.ts"
import { Stats } from "../../src/server/Stats.ts"
import type { Entry } from "../../src/transports/Transport.ts"
import { ChatProtocol } from "./support/chatProtocol.ts"

const codec = new ProtocolCodec(ChatProtocol)

const setup = (compact = false) => {
  const sent: Array<string> = []
  const aliases: Array<{ alias: number; channel: string; epoch: string }> = []
  const resets: Array<{ reason: ResetReason; position: Position }> = []
  const socket = { send: (data: unknown) => void sent.push(String(data)), bufferedAmount: 0, readyState: 1 }
  const outbound = new Outbound({
    socket: socket as never,
    maxOutboundBytes: 1 << 20,
    outboundOverflow: () => undefined,
    outboundWrite: () => undefined
  })
  const subscription = new Subscription("room:1", {
    version: 2,
    wire: "json",
    compact,
    outbound,
    sendReset: (_c, reason, position) => void resets.push({ reason, position }),
    sendAlias: (alias, channel, epoch) => {
      aliases.push({ alias, channel, epoch })
      // in the connection's order: an alias frame goes out before the event that needs it
      outbound.push(JSON.stringify({ type: "alias", alias, channel, epoch }))
    },
    stats: new Stats()
  })
  const offsets = () => {
    outbound.flush()
    return sent.flatMap((m) => m.split("\n")).map((f) => (JSON.parse(f) as { offset: number }).offset)
  }
  const frames = () => {
    outbound.flush()
    return sent.flatMap((m) => m.split("\n")).map((f) => JSON.parse(f) as unknown)
  }
  return { subscription, resets, offsets, frames, aliases }
}

const entry = (offset: number, epoch = "e1", alias = 1): EntryFrames => {
  const e: Entry = { channel: "room:1", epoch, offset, event: "tick", data: `{"n":${offset}}`, version: 2, time: 9 }
  return new EntryFrames(e, alias, codec, () => undefined)
}

describe("Subscription", () => {
  it("merges live entries that arrived during replay: no gap, no duplicate", () => {
    const { subscription, offsets, resets } = setup()
    subscription.startAt({ epoch: "e1", offset: 0 })
    subscription.offer(entry(3)) // live, while replaying
    subscription.offer(entry(4))
    for (const o of [1, 2, 3]) subscription.replay(entry(o))
    subscription.goLive()
    subscription.offer(entry(5))
    expect(offsets()).toEqual([1, 2, 3, 4, 5])
    expect(resets).toEqual([])
  })

  it("announces an epoch change, then continues in the new epoch", () => {
    const { subscription, offsets, resets } = setup()
    subscription.startAt({ epoch: "e1", offset: 7 })
    subscription.goLive()
    subscription.offer(entry(1, "e2"))
    expect(resets).toEqual([{ reason: "epoch_changed", position: { epoch: "e2", offset: 0 } }])
    expect(offsets()).toEqual([1])
  })

  it("turns a jump in the live feed (a gap the transport could not fill) into reset {trimmed}", () => {
    const { subscription, offsets, resets } = setup()
    subscription.startAt({ epoch: "e1", offset: 0 })
    subscription.goLive()
    for (const o of [1, 2, 6]) subscription.offer(entry(o))
    expect(resets).toEqual([{ reason: "trimmed", position: { epoch: "e1", offset: 5 } }])
    expect(offsets()).toEqual([1, 2, 6])
  })
})

describe("Subscription in the compact envelope", () => {
  it("sends the alias before the first event, and again when the epoch or the alias changes", () => {
    const { subscription, frames } = setup(true)
    subscription.startAt({ epoch: "e1", offset: 0 })
    subscription.replay(entry(1))
    subscription.goLive()
    subscription.offer(entry(2))
    subscription.offer(entry(1, "e2"))
    subscription.offer(entry(2, "e2", 4))
    expect(frames()).toEqual([
      { type: "alias", alias: 1, channel: "room:1", epoch: "e1" },
      [1, 1, "tick", { n: 1 }, 9],
      [1, 2, "tick", { n: 2 }, 9],
      { type: "alias", alias: 1, channel: "room:1", epoch: "e2" },
      [1, 1, "tick", { n: 1 }, 9],
      { type: "alias", alias: 4, channel: "room:1", epoch: "e2" },
      [4, 2, "tick", { n: 2 }, 9]
    ])
  })

  it("shares one compact frame between subscribers, apart from the self-describing one", () => {
    const frames = entry(3)
    const compact = frames.forVersion(2, "json", true)
    expect(frames.forVersion(2, "json", true)).toBe(compact)
    expect(frames.forVersion(2, "json", false)).not.toBe(compact)
    expect(compact?.payload).toBe('[1,3,"tick",{"n":3},9]')
  })
})

describe("Hub channel aliases", () => {
  const listening = {
    listen: () => Effect.void
  }
  const join = (h: Hub, channel: string) => {
    const subscription = new Subscription(channel, undefined as never)
    Effect.runSync(h.join(subscription))
    return subscription
  }
  const aliasOf = (h: Hub, channel: string) =>
    h.framesFor({ channel, epoch: "e", offset: 1, event: "tick", data: "{}", version: 2, time: 0 }).alias

  it("numbers channels from 1 while they have subscribers here, and reuses a closed channel's number", () => {
    const h = new Hub(listening as never, codec, () => undefined)
    const a = join(h, "a")
    join(h, "b")
    const a2 = join(h, "a")
    expect([aliasOf(h, "a"), aliasOf(h, "b")]).toEqual([1, 2])
    Effect.runSync(h.leave(a))
    expect(aliasOf(h, "a")).toBe(1)
    Effect.runSync(h.leave(a2))
    join(h, "c")
    expect(aliasOf(h, "c")).toBe(1)
    join(h, "a")
    expect(aliasOf(h, "a")).toBe(3)
  })
})

describe("Hub channel aliases when a listen fails", () => {
  it("a subscription that left before its channel's listen failed frees the alias once, not twice", async () => {
    const gate = Effect.runSync(Deferred.make<void>())
    const failing = { listen: () => Effect.andThen(Deferred.await(gate), Effect.fail("broker down" as never)) }
    const h = new Hub(failing as never, codec, () => undefined)
    const early = new Subscription("x", undefined as never)
    const joined = Effect.runPromise(Effect.exit(h.join(early)))
    await Effect.runPromise(h.leave(early).pipe(Effect.timeout("10 millis"), Effect.ignore))
    Effect.runSync(Deferred.succeed(gate, undefined))
    expect((await joined)._tag).toBe("Failure")
    // the transport is back: two new channels must get two different aliases
    ;(h as unknown as { transport: unknown }).transport = { listen: () => Effect.void }
    Effect.runSync(h.join(new Subscription("y", undefined as never)))
    Effect.runSync(h.join(new Subscription("z", undefined as never)))
    const aliasOf = (channel: string) =>
      h.framesFor({ channel, epoch: "e", offset: 1, event: "tick", data: "{}", version: 2, time: 0 }).alias
    expect(aliasOf("y")).not.toBe(aliasOf("z"))
  })
})

describe("Hub replay frames", () => {
  const hub = () => new Hub(undefined as never, codec, () => undefined)
  const historyEntry = (channel: string, offset: number): Entry => ({
    channel,
    epoch: "e1",
    offset,
    event: "tick",
    data: `{"n":${offset}}`,
    version: 2,
    time: 0
  })

  it("keeps frames for others only while another subscription replays the same channel", () => {
    const h = hub()
    h.replayStarted("room:1")
    // alone: nothing to share, nothing kept
    expect(h.framesFor(historyEntry("room:1", 1))).not.toBe(h.framesFor(historyEntry("room:1", 1)))
    h.replayStarted("room:1")
    h.replayStarted("room:2")
    const first = h.framesFor(historyEntry("room:1", 2))
    expect(h.framesFor(historyEntry("room:1", 2))).toBe(first)
    // another channel's lone replay is not counted with room:1's
    expect(h.framesFor(historyEntry("room:2", 2))).not.toBe(h.framesFor(historyEntry("room:2", 2)))
    h.replayEnded("room:1")
    // kept frames stay usable; new ones are no longer kept
    expect(h.framesFor(historyEntry("room:1", 2))).toBe(first)
    expect(h.framesFor(historyEntry("room:1", 3))).not.toBe(h.framesFor(historyEntry("room:1", 3)))
    h.replayEnded("room:1")
    h.replayEnded("room:2")
    h.replayStarted("room:1")
    expect(h.framesFor(historyEntry("room:1", 4))).not.toBe(h.framesFor(historyEntry("room:1", 4)))
  })
})
