/**
 * ChannelState on its own: the verdicts that drive dedup, resets and acks. Offsets may jump forward (events the
 * client's version does not see, conflated latest values): a jump is accepted, never re-requested.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { ChannelState } from "../../src/client/ChannelState.ts"

describe("ChannelState", () => {
  it("delivers in order, drops duplicates, accepts a forward jump", () => {
    const s = new ChannelState("c")
    expect(s.receive("e1", 5)._tag).toBe("Deliver") // first event: any offset
    expect(s.receive("e1", 6)._tag).toBe("Deliver")
    expect(s.receive("e1", 6)._tag).toBe("Duplicate")
    expect(s.receive("e1", 2)._tag).toBe("Duplicate")
    expect(s.receive("e1", 9)._tag).toBe("Deliver")
    expect(s.receive("e1", 7)._tag).toBe("Duplicate")
    expect(s.subscribed({ epoch: "e1", offset: 9 })).toEqual({ _tag: "Live" })
    expect(s.position).toEqual({ epoch: "e1", offset: 9 })
  })

  it("reports a new epoch without a reset as an epoch change", () => {
    const s = new ChannelState("c", { epoch: "e1", offset: 3 })
    expect(s.receive("e2", 1)).toEqual({
      _tag: "EpochChanged",
      previous: { epoch: "e1", offset: 3 },
      position: { epoch: "e2", offset: 0 }
    })
    expect(s.receive("e2", 2)._tag).toBe("Deliver")
  })

  it("moves to the position a reset names", () => {
    const s = new ChannelState("c", { epoch: "e1", offset: 3 })
    expect(s.reset({ epoch: "e1", offset: 10 })).toEqual({ epoch: "e1", offset: 3 })
    expect(s.receive("e1", 11)._tag).toBe("Deliver")
  })

  it("adopts a `subscribed` position past the last one seen (nothing more was visible to it)", () => {
    const s = new ChannelState("c", { epoch: "e1", offset: 3 })
    expect(s.subscribed({ epoch: "e1", offset: 5 })).toEqual({ _tag: "Live" })
    expect(s.position).toEqual({ epoch: "e1", offset: 5 })
    expect(s.receive("e1", 5)._tag).toBe("Duplicate")
    expect(s.subscribed({ epoch: "e2", offset: 5 })._tag).toBe("EpochChanged")
  })

  it("acks only what moved", () => {
    const s = new ChannelState("c")
    expect(s.takeAck()).toBeUndefined()
    s.markProcessed({ epoch: "e1", offset: 1 })
    s.markProcessed({ epoch: "e1", offset: 2 })
    expect(s.takeAck()).toEqual({ epoch: "e1", offset: 2 })
    expect(s.takeAck()).toBeUndefined()
    s.markProcessed({ epoch: "e2", offset: 1 })
    expect(s.takeAck()).toEqual({ epoch: "e2", offset: 1 })
  })

  it("delivers a strictly increasing, duplicate-free run whatever order frames arrive in", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 30 }), { maxLength: 200 }), (offsets) => {
        const s = new ChannelState("c", { epoch: "e", offset: 0 })
        const delivered: Array<number> = []
        for (const o of offsets) if (s.receive("e", o)._tag === "Deliver") delivered.push(o)
        expect(delivered).toEqual([...new Set(delivered)].sort((a, b) => a - b))
        if (offsets.length > 0) expect(delivered[0]).toBe(offsets[0])
      })
    )
  })
})
