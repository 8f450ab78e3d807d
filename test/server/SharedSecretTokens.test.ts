/**
 * The synchronous HS256 verifier (src/server/auth/SharedSecretTokens.ts, fast-jwt) against jose's `jwtVerify` with the same options, token by
 * token: every token either verifier accepts, the other accepts with the same claims, and expired tokens are
 * told apart from invalid ones the same way. The only intended differences are listed (stricter here).
 */
import { describe, expect, it } from "@effect/vitest"
import { type JWTPayload, jwtVerify, SignJWT } from "jose"
import * as SharedSecretTokens from "../../src/server/auth/SharedSecretTokens.ts"

const secret = "differential-test-secret-0123456789abcdef"
const key = new TextEncoder().encode(secret)
const now = Math.floor(Date.now() / 1000)
const b64 = (value: unknown) =>
  Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url")

/** A token with any header and payload, signed with `signWith` (HMAC-SHA256 over the two parts as given). */
const raw = async (header: unknown, payload: unknown, signWith = secret): Promise<string> => {
  const input = `${b64(header)}.${b64(payload)}`
  const hmac = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(signWith),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"]
  )
  const signature = Buffer.from(await crypto.subtle.sign("HMAC", hmac, new TextEncoder().encode(input))).toString(
    "base64url"
  )
  return `${input}.${signature}`
}

const signed = (claims: JWTPayload, alg = "HS256") =>
  new SignJWT(claims).setProtectedHeader({ alg }).sign(new TextEncoder().encode(secret))

type Verdict = { ok: true; payload: unknown } | { ok: false; expired: boolean }

const byJose = (token: string, options: SharedSecretTokens.SharedSecretOptions): Promise<Verdict> =>
  jwtVerify(token, key, {
    algorithms: ["HS256"],
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.audience ? { audience: options.audience } : {})
  }).then(
    ({ payload }) => ({ ok: true, payload }),
    (error: { code?: string }) => ({ ok: false, expired: error.code === "ERR_JWT_EXPIRED" })
  )

const byUs = (token: string, options: SharedSecretTokens.SharedSecretOptions): Verdict => {
  const result = SharedSecretTokens.verifier(secret, options)(token)
  return result.ok ? { ok: true, payload: result.payload } : { ok: false, expired: result.reason === "expired_token" }
}

describe("HS256 verifier", () => {
  it("answers every token as jose does", async () => {
    const body = { sub: "alice", channels: ["chat:*"] }
    const tokens: Array<[string, string]> = [
      ["plain", await signed(body)],
      ["with exp in the future", await signed({ ...body, exp: now + 60 })],
      ["expired", await signed({ ...body, exp: now - 1 })],
      ["expires this second", await signed({ ...body, exp: now })],
      ["nbf in the future", await signed({ ...body, nbf: now + 60 })],
      ["nbf now", await signed({ ...body, nbf: now })],
      ["iat as a string", await raw({ alg: "HS256" }, { ...body, iat: "yesterday" })],
      ["exp as a string", await raw({ alg: "HS256" }, { ...body, exp: String(now + 60) })],
      ["nbf as null", await raw({ alg: "HS256" }, { ...body, nbf: null })],
      ["expired and nbf in the future", await signed({ ...body, exp: now - 1, nbf: now + 60 })],
      ["HS512 with the same secret", await signed(body, "HS512")],
      ["alg none", `${b64({ alg: "none" })}.${b64(body)}.`],
      ["alg missing", await raw({ typ: "JWT" }, body)],
      ["wrong secret", await raw({ alg: "HS256" }, body, "another-secret-entirely-0123456789")],
      ["payload is an array", await raw({ alg: "HS256" }, [1, 2])],
      ["payload is not JSON", await raw({ alg: "HS256" }, "not json")],
      ["header is not JSON", await raw("not json", body)],
      ["header is an array", await raw(["HS256"], body)],
      ["crit with an unknown name", await raw({ alg: "HS256", crit: ["exp"] }, body)],
      ["b64 false", await raw({ alg: "HS256", b64: false, crit: ["b64"] }, body)],
      ["two parts", (await signed(body)).split(".").slice(0, 2).join(".")],
      ["four parts", `${await signed(body)}.x`],
      ["empty", ""],
      ["garbage", "a.b.c"]
    ]
    const good = await signed(body)
    const [h, p, s] = good.split(".") as [string, string, string]
    const flipped = `${s.slice(0, -2)}${s.at(-2) === "A" ? "B" : "A"}${s.at(-1)}`
    tokens.push(["signature changed", `${h}.${p}.${flipped}`])
    tokens.push(["payload changed", `${h}.${b64({ ...body, sub: "mallory" })}.${s}`])
    tokens.push(["signature with an extra character", `${h}.${p}.${s}A`])
    tokens.push(["signature truncated", `${h}.${p}.${s.slice(0, -1)}`])
    tokens.push(["signature with a non-ASCII character", `${h}.${p}.${s.slice(0, -1)}é`])
    tokens.push(["signature with an astral character", `${h}.${p}.${s.slice(0, -2)}😀`])

    const checked: Array<string> = []
    for (const [name, token] of tokens) {
      const jose = await byJose(token, {})
      expect(byUs(token, {}), name).toEqual(jose)
      checked.push(`${name}: ${jose.ok ? "ok" : jose.expired ? "expired" : "invalid"}`)
    }
    // the list holds accepted, expired and invalid tokens, so agreement is not agreement on one answer only
    expect(checked.filter((c) => c.endsWith(": ok")).length).toBeGreaterThanOrEqual(3)
    expect(checked.filter((c) => c.endsWith(": expired")).length).toBeGreaterThanOrEqual(2)
    expect(checked.filter((c) => c.endsWith(": invalid")).length).toBeGreaterThanOrEqual(15)
  })

  it("checks issuer and audience as jose does", async () => {
    const options = { issuer: "https://issuer.example", audience: "tidings" }
    const cases: Array<[string, JWTPayload]> = [
      ["both right", { sub: "a", iss: options.issuer, aud: options.audience }],
      ["audience in a list", { sub: "a", iss: options.issuer, aud: ["other", options.audience] }],
      ["issuer wrong", { sub: "a", iss: "https://elsewhere.example", aud: options.audience }],
      ["issuer missing", { sub: "a", aud: options.audience }],
      ["audience wrong", { sub: "a", iss: options.issuer, aud: "others" }],
      ["audience missing", { sub: "a", iss: options.issuer }],
      ["audience list without it", { sub: "a", iss: options.issuer, aud: ["x", "y"] }]
    ]
    let accepted = 0
    for (const [name, claims] of cases) {
      const token = await signed(claims)
      const jose = await byJose(token, options)
      expect(byUs(token, options), name).toEqual(jose)
      if (jose.ok) accepted++
    }
    expect(accepted).toBe(2)
  })

  it("is stricter than jose only where listed: padded base64url and crit b64", async () => {
    const body = { sub: "alice" }
    const padded = await raw({ alg: "HS256" }, body)
    const [h, p] = padded.split(".") as [string, string, string]
    // a header of a length that needs padding, padded, then signed as sent
    const paddedHeader = `${h}${"=".repeat((4 - (h.length % 4)) % 4) || "=="}`
    const input = `${paddedHeader}.${p}`
    const hmac = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
    const sig = Buffer.from(await crypto.subtle.sign("HMAC", hmac, new TextEncoder().encode(input))).toString(
      "base64url"
    )
    expect(byUs(`${input}.${sig}`, {})).toEqual({ ok: false, expired: false })
    const critB64 = await raw({ alg: "HS256", b64: true, crit: ["b64"] }, body)
    expect(byUs(critB64, {})).toEqual({ ok: false, expired: false })
  })
})
