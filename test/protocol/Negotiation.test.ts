/** Choosing a version and a wire codec from a client's subprotocol offers. */
import { describe, expect, it } from "vitest"
import { choose, negotiate, parseOffer, subprotocol } from "../../src/protocol/Negotiation.ts"

describe("Negotiation", () => {
  it("names subprotocols by protocol, version and codec (JSON when none is given)", () => {
    expect(subprotocol("chat", 2)).toBe("tidings.chat.v2.json")
    expect(subprotocol("chat", 2, "msgpack")).toBe("tidings.chat.v2.msgpack")
    expect(parseOffer("tidings.chat.v12.msgpack")).toEqual({ protocol: "chat", version: 12, codec: "msgpack" })
  })

  it("picks the highest common version, then the codec offered first for it", () => {
    const offers = (...list: Array<string>) => negotiate("chat", [1, 2], list)
    expect(offers("tidings.chat.v1.json", "tidings.chat.v2.msgpack")).toEqual({ version: 2, codec: "msgpack" })
    expect(offers("tidings.chat.v2.msgpack", "tidings.chat.v2.json")).toEqual({ version: 2, codec: "msgpack" })
    expect(offers("tidings.chat.v2.json", "tidings.chat.v2.msgpack")).toEqual({ version: 2, codec: "json" })
    expect(offers("tidings.chat.v2.msgpack", "tidings.chat.v3.json")).toEqual({ version: 2, codec: "msgpack" })
    expect(offers("tidings.chat.v2.cbor", "tidings.other.v2.json")).toBeUndefined()
  })

  it("speaks only the codecs it is given: a JSON-only peer ignores MessagePack offers", () => {
    expect(negotiate("chat", [1, 2], ["tidings.chat.v2.msgpack", "tidings.chat.v1.json"], ["json"])).toEqual({
      version: 1,
      codec: "json"
    })
    expect(choose("chat", [1, 2], ["tidings.chat.v2.msgpack", "tidings.chat.v1.json"])).toBe(1)
    expect(choose("chat", [1, 2], ["tidings.chat.v2.msgpack"])).toBeUndefined()
  })
})
