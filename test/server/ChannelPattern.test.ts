/** Channel permission patterns: wildcards, `{sub}`, and a subject that must never act as a wildcard. */
import { describe, expect, it } from "vitest"
import { compile } from "../../src/server/ChannelPattern.ts"

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
})
