/** Subscriptions: a connection's subscriptions by channel as one field — none, the one subscription, or a Map. */
import { describe, expect, it } from "vitest"
import * as Subscriptions from "../../src/server/connection/Subscriptions.ts"
import type { Subscription } from "../../src/server/fanout/Fanout.ts"

const subscription = (channel: string) => ({ channel }) as Subscription

describe("Subscriptions", () => {
  it("holds one subscription as itself and replaces it for the same channel", () => {
    const a1 = subscription("a")
    const a2 = subscription("a")
    let held: Subscriptions.Subscriptions
    expect(Subscriptions.count(held)).toBe(0)
    expect(Subscriptions.get(held, "a")).toBeUndefined()
    held = Subscriptions.put(held, a1)
    expect(held).toBe(a1)
    held = Subscriptions.put(held, a2)
    expect(held).toBe(a2)
    expect(Subscriptions.count(held)).toBe(1)
    expect(Subscriptions.get(held, "a")).toBe(a2)
    expect(Subscriptions.get(held, "b")).toBeUndefined()
    expect(Subscriptions.remove(held, "b")).toBe(a2)
    expect(Subscriptions.remove(held, "a")).toBeUndefined()
  })

  it("gets, replaces and removes by channel with several, and is empty again after the last", () => {
    const [a, b, c, b2] = [subscription("a"), subscription("b"), subscription("c"), subscription("b")]
    let held = Subscriptions.put(Subscriptions.put(Subscriptions.put(undefined, a), b), c)
    expect(held).toBeInstanceOf(Map)
    expect(Subscriptions.count(held)).toBe(3)
    held = Subscriptions.put(held, b2)
    expect(Subscriptions.count(held)).toBe(3)
    expect(Subscriptions.get(held, "b")).toBe(b2)
    expect(
      Subscriptions.all(held)
        .map((s) => s.channel)
        .sort()
    ).toEqual(["a", "b", "c"])
    held = Subscriptions.remove(held, "a")
    held = Subscriptions.remove(held, "zz")
    expect(Subscriptions.all(held)).toEqual([b2, c])
    held = Subscriptions.remove(Subscriptions.remove(held, "b"), "c")
    expect(held).toBeUndefined()
    expect(Subscriptions.all(held)).toEqual([])
  })
})
