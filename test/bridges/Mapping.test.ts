/**
 * Bridge message mapping (src/bridges/Mapping.ts): channel templates from wildcards, routing keys and body
 * fields; event names from a field or fixed; data from a field or the whole body; ids from a field or the
 * broker; and a reason for every message that cannot be mapped.
 */
import { describe, expect, it } from "vitest"
import { globCaptures, map } from "../../src/bridges/Mapping.ts"

describe("bridge mapping", () => {
  it("fills templates from wildcards, named values and (nested) fields", () => {
    const spec = { channel: "request:{requestId}:{1}:{routingKey}:{meta.run}", event: { field: "type" } }
    const text = JSON.stringify({ requestId: "r7", type: "step", meta: { run: 3 }, x: 1 })
    const result = map(spec, text, { captures: ["c1"], names: { routingKey: "progress.r7" }, brokerId: "m-1" })
    expect(result).toEqual({
      ok: true,
      value: {
        channel: "request:r7:c1:progress.r7:3",
        event: "step",
        data: { requestId: "r7", type: "step", meta: { run: 3 }, x: 1 },
        id: "m-1"
      }
    })
  })

  it("takes data and id from fields, or a fixed event name", () => {
    const spec = { channel: "c", event: { name: "progress" }, data: { field: "payload" }, id: { field: "seq" } }
    expect(map(spec, '{"payload":{"pct":5},"seq":42}', { captures: [] })).toEqual({
      ok: true,
      value: { channel: "c", event: "progress", data: { pct: 5 }, id: "42" }
    })
  })

  it("says why a message cannot be mapped", () => {
    const spec = { channel: "request:{requestId}", event: { field: "type" }, data: { field: "data" } }
    const reason = (text: string) => {
      const result = map(spec, text, { captures: [] })
      return result.ok ? "mapped" : result.reason
    }
    expect(reason("nope")).toContain("not JSON")
    expect(reason("[1]")).toContain("not a JSON object")
    expect(reason('{"type":"a","data":{}}')).toContain("{requestId}")
    expect(reason('{"requestId":"r","data":{}}')).toContain("no event name in field type")
    expect(reason('{"requestId":"r","type":"a"}')).toContain("no data field data")
    expect(reason('{"requestId":"r","type":"a","data":null}')).toBe("mapped")
    // an empty id is no id (as an idempotency key it would swallow every later message)
    const withId = { ...spec, id: { field: "seq" } }
    const empty = map(withId, '{"requestId":"r","type":"a","data":1,"seq":""}', { captures: [] })
    expect(empty.ok ? "mapped" : empty.reason).toContain("no id in field seq")
    const brokerEmpty = map(spec, '{"requestId":"r","type":"a","data":1}', { captures: [], brokerId: "" })
    expect(brokerEmpty.ok && brokerEmpty.value.id).toBeUndefined()
  })

  it("captures the wildcards of a Redis pattern", () => {
    expect(globCaptures("app:out:*", "app:out:client-1")).toEqual(["client-1"])
    expect(globCaptures("a.*.b?", "a.x.y.bz")).toEqual(["x.y", "z"])
    expect(globCaptures("app:out:*", "other:client")).toBeUndefined()
  })
})
