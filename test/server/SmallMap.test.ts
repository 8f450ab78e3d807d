/** SmallMap: the first entry inline, the rest in a Map; behaves like a Map except for iteration order. */
import { describe, expect, it } from "vitest"
import { SmallMap } from "../../src/server/SmallMap.ts"

describe("SmallMap", () => {
  it("gets, sets, replaces and deletes like a Map, with one entry and with several", () => {
    const map = new SmallMap<string, number>()
    expect(map.size).toBe(0)
    expect(map.get("a")).toBeUndefined()
    map.set("a", 1)
    map.set("a", 2)
    expect(map.size).toBe(1)
    expect(map.get("a")).toBe(2)
    map.set("b", 3)
    map.set("c", 4)
    map.set("b", 5)
    expect(map.size).toBe(3)
    expect(map.get("b")).toBe(5)
    expect(map.keys().sort()).toEqual(["a", "b", "c"])
    expect(map.values().sort()).toEqual([2, 4, 5])
    expect(map.delete("a")).toBe(true)
    expect(map.delete("a")).toBe(false)
    expect(map.get("a")).toBeUndefined()
    expect(map.size).toBe(2)
    // a key already held in the overflow map is replaced there, never held twice
    map.set("b", 6)
    expect(map.size).toBe(2)
    expect(map.get("b")).toBe(6)
    map.set("d", 7)
    expect(map.size).toBe(3)
    expect(map.keys().sort()).toEqual(["b", "c", "d"])
    expect(map.delete("c")).toBe(true)
    expect(map.delete("zz")).toBe(false)
    map.clear()
    expect(map.size).toBe(0)
    expect(map.keys()).toEqual([])
    expect(map.get("b")).toBeUndefined()
  })

  it("holds undefined values", () => {
    const map = new SmallMap<string, undefined>()
    map.set("a", undefined)
    expect(map.size).toBe(1)
    expect(map.values()).toEqual([undefined])
  })
})
