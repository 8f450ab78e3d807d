/** Channel permission patterns: wildcards, `{sub}`, and a subject that must never act as a wildcard. */
import { describe, expect, it } from "vitest"
import { Identity } from "../../src/server/auth/Auth.ts"
import { compile, isPersonalChannel } from "../../src/server/auth/ChannelPattern.ts"

describe("channel patterns", () => {
  it("matches exact names, `*` runs and `{sub}`", () => {
    const can = compile(["run:*", "team:{sub}:*", "news"], "ann")
    expect(can("run:1")).toBe(true)
    expect(can("run:")).toBe(true)
    expect(can("team:ann:chat")).toBe(true)
    expect(can("team:bob:chat")).toBe(false)
    expect(can("news")).toBe(true)
    expect(can("newsy")).toBe(false)
    expect(compile(["*"], null)("anything")).toBe(true)
  })

  it("treats the subject literally: a subject of `*` or `.*` reads only its own channels", () => {
    const star = compile(["user:{sub}", "box:{sub}:*"], "*")
    expect(star("user:*")).toBe(true)
    expect(star("user:alice")).toBe(false)
    expect(star("box:*:1")).toBe(true)
    expect(star("box:alice:1")).toBe(false)
    expect(compile(["user:{sub}"], ".*")("user:alice")).toBe(false)
  })

  it("skips `{sub}` patterns for anonymous identities", () => {
    const anon = compile(["user:{sub}", "public:*"], null)
    expect(anon("user:")).toBe(false)
    expect(anon("public:x")).toBe(true)
  })

  it("shares one matcher between identities with the same list, unless the list mentions {sub}", () => {
    expect(compile(["team:*", "broadcast"], "alice")).toBe(compile(["team:*", "broadcast"], "bob"))
    const alice = compile(["box:{sub}:*"], "alice")
    const bob = compile(["box:{sub}:*"], "bob")
    expect(alice).not.toBe(bob)
    expect(alice("box:alice:1")).toBe(true)
    expect(alice("box:bob:1")).toBe(false)
    expect(bob("box:bob:1")).toBe(true)
    // lists that a separator-joined key would confuse stay apart
    const joined = compile(["team:a\u0000admin"], "alice")
    compile(["team:a", "admin"], "alice")
    expect(joined("admin")).toBe(false)
    expect(compile(["team:a", "admin"], "bob")("admin")).toBe(true)
  })

  it("lets an identity read its personal channel on top of a shared matcher without changing it", () => {
    const shared = compile(["team:*"], "alice")
    const alice = new Identity("alice", shared, compile([], "alice"), undefined)
    expect(alice.canRead("user:alice")).toBe(true)
    expect(alice.canRead("team:red")).toBe(true)
    expect(alice.canRead("user:bob")).toBe(false)
    expect(alice.canRead("user:alicex")).toBe(false)
    expect(alice.canRead("xuser:alice")).toBe(false)
    expect(alice.canPublish("team:red")).toBe(false)
    expect(shared("user:alice")).toBe(false)
    expect(new Identity(null, shared, shared, undefined).canRead("user:null")).toBe(false)
    expect(compile([], "alice")("anything")).toBe(false)
  })

  it("recognizes a personal channel only as the whole name", () => {
    expect(isPersonalChannel("user:bob", "bob")).toBe(true)
    expect(isPersonalChannel("user:bo", "bob")).toBe(false)
    expect(isPersonalChannel("user:bobb", "bob")).toBe(false)
    expect(isPersonalChannel("usex:bob", "bob")).toBe(false)
    expect(isPersonalChannel("user:", "")).toBe(true)
  })
})
