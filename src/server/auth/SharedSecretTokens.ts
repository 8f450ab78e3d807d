/**
 * Verifies HS256 JWTs (a shared secret) synchronously with fast-jwt, answering as jose's
 * `jwtVerify(token, secret, { algorithms: ["HS256"], issuer, audience })` does, which
 * test/server/SharedSecretTokens.test.ts checks token by token. Why not jose here: jose verifies through WebCrypto,
 * asynchronously and at several times the CPU per token (bench/micro/jwt-verify.ts), and connection setup verifies
 * one token per connection; fast-jwt uses node:crypto's HMAC. jose still verifies JWKS (asymmetric) tokens and
 * signs tokens in tests and examples.
 *
 * Checked besides what fast-jwt checks: `iat`, `nbf` and `exp` are numbers when present (fast-jwt ignores a claim
 * of another type; jose refuses it).
 */
import { createVerifier, TokenError } from "fast-jwt"

export type TokenFailure = "invalid_token" | "expired_token"

export interface SharedSecretOptions {
  readonly issuer?: string | undefined
  readonly audience?: string | undefined
}

/** The claims of a valid token, or why it is refused. */
export type VerifyResult =
  | { readonly ok: true; readonly payload: Record<string, unknown> }
  | { readonly ok: false; readonly reason: TokenFailure; readonly message: string }

const TIME_CLAIMS = ["iat", "nbf", "exp"] as const

export const verifier = (secret: string, options: SharedSecretOptions = {}): ((token: string) => VerifyResult) => {
  const verify = createVerifier({
    key: secret,
    algorithms: ["HS256"],
    // jose's defaults: no clock tolerance, `iat` not checked against the clock
    clockTolerance: 0,
    ...(options.issuer !== undefined ? { allowedIss: options.issuer } : {}),
    ...(options.audience !== undefined ? { allowedAud: options.audience } : {}),
    // fast-jwt checks a claim it is given a value for only when the token has it; jose requires it
    requiredClaims: [
      ...(options.issuer !== undefined ? ["iss"] : []),
      ...(options.audience !== undefined ? ["aud"] : [])
    ]
  })
  return (token) => {
    let payload: unknown
    try {
      payload = verify(token)
    } catch (error) {
      if (!(error instanceof TokenError)) throw error
      return {
        ok: false,
        reason: error.code === TokenError.codes.expired ? "expired_token" : "invalid_token",
        message: error.message
      }
    }
    if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
      return { ok: false, reason: "invalid_token", message: "the claims set must be a JSON object" }
    }
    const claims = payload as Record<string, unknown>
    for (const claim of TIME_CLAIMS) {
      if (claims[claim] !== undefined && typeof claims[claim] !== "number") {
        return { ok: false, reason: "invalid_token", message: `"${claim}" claim must be a number` }
      }
    }
    return { ok: true, payload: claims }
  }
}
