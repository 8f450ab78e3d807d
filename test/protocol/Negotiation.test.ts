/** Choosing a version, a wire codec and an envelope from a client's subprotocol offers. */
import { describe, expect, it } from "vitest"
import { choose, negotiate, parseOffer, subprotocol } from "../../src/protocol/Negotiation.ts"

describe("Negotiation", () => {
  it("names subprotocols by protocol, version, codec (JSON when none is given) and envelope", () => {
    expect(subprotocol("chat", 2)).toBe("tidings.chat.v2.json")
    expect(subprotocol("chat", 2, "msgpack")).toBe("tidings.chat.v2.msgpack")
    expect(subprotocol("chat", 2, "json", true)).toBe("tidings.chat.v2.json.compact")
    expect(parseOffer("tidings.chat.v12.msgpack")).toEqual({
      protocol: "chat",
      version: 12,
      codec: "msgpack",
      envelope: undefined
    })
    expect(parseOffer("tidings.chat.v1.json.compact")).toEqual({
      protocol: "chat",
      version: 1,
      codec: "json",
      envelope: "compact"
    })
    expect(parseOffer("tidings.chat.v1.json.compact.more")).toBeUndefined()
  })

  it("picks the highest common version, then the codec and envelope offered first for it", () => {
    const offers = (...list: Array<string>) => negotiate("chat", [1, 2], list)
    const msgpack = { version: 2, codec: "msgpack", compact: false }
    expect(offers("tidings.chat.v1.json", "tidings.chat.v2.msgpack")).toEqual(msgpack)
    expect(offers("tidings.chat.v2.msgpack", "tidings.chat.v2.json")).toEqual(msgpack)
    expect(offers("tidings.chat.v2.json", "tidings.chat.v2.msgpack")).toEqual({ ...msgpack, codec: "json" })
    expect(offers("tidings.chat.v2.msgpack", "tidings.chat.v3.json")).toEqual(msgpack)
    expect(offers("tidings.chat.v2.cbor", "tidings.other.v2.json")).toBeUndefined()
    expect(offers("tidings.chat.v2.msgpack.compact", "tidings.chat.v2.msgpack")).toEqual({ ...msgpack, compact: true })
    expect(offers("tidings.chat.v2.json", "tidings.chat.v2.json.compact")).toEqual({ ...msgpack, codec: "json" })
    // an envelope it does not know is not a reason to refuse: the next offer is taken
    expect(offers("tidings.chat.v2.json.tiny", "tidings.chat.v2.json")).toEqual({ ...msgpack, codec: "json" })
  })

  it("speaks only the codecs and envelopes it is given: a JSON-only peer ignores MessagePack and compact offers", () => {
    expect(negotiate("chat", [1, 2], ["tidings.chat.v2.msgpack", "tidings.chat.v1.json"], ["json"])).toEqual({
      version: 1,
      codec: "json",
      compact: false
    })
    expect(choose("chat", [1, 2], ["tidings.chat.v2.msgpack", "tidings.chat.v1.json"])).toBe(1)
    expect(choose("chat", [1, 2], ["tidings.chat.v2.msgpack"])).toBeUndefined()
    expect(choose("chat", [1, 2], ["tidings.chat.v2.json.compact", "tidings.chat.v2.json"])).toBe(2)
    expect(choose("chat", [1, 2], ["tidings.chat.v2.json.compact"])).toBeUndefined()
  })
})
