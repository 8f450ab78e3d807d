/**
 * Authentication: turns a JWT (or its absence) into an Identity — who the user is, which channels it may read
 * and publish to, and when its token expires. JWTs are verified with `jose` against a shared secret (HS256) or
 * a JWKS URL. Claims: `sub` (user id, required), `channels` (read patterns), `publish` (publish patterns).
 * Every identity may also read its personal channel `user:<sub>` and the `broadcast` channel.
 * Where a token is read from (header, query, frame) is the server's business, not this module's.
 */
import { Effect, Schema } from "effect"
import { createRemoteJWKSet, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from "jose"
import { broadcastChannel, compile, type Matcher, personalChannel } from "./ChannelPattern.ts"

export interface AuthOptions {
  /** HS256 shared secret for verifying tokens. */
  readonly secret?: string
  /** Or a JWKS URL for asymmetric tokens (RS256/ES256/EdDSA). */
  readonly jwksUrl?: string
  readonly issuer?: string
  readonly audience?: string
  /** Allow connections without a token; they read these channel patterns. Off by default. */
  readonly anonymous?: { readonly channels: ReadonlyArray<string> }
}

export interface Identity {
  /** The token's subject, or null for an anonymous connection. */
  readonly user: string | null
  readonly canRead: Matcher
  readonly canPublish: Matcher
  /** Token expiry in ms since the epoch; undefined when the token does not expire or for anonymous. */
  readonly expiresAt: number | undefined
}

export class AuthFailed extends Schema.TaggedError<AuthFailed>()("AuthFailed", {
  reason: Schema.Literals(["missing_token", "invalid_token", "expired_token", "misconfigured"]),
  message: Schema.String
}) {}

const Claims = Schema.Struct({
  sub: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(256)),
  channels: Schema.optionalKey(Schema.Array(Schema.String)),
  publish: Schema.optionalKey(Schema.Array(Schema.String))
})
const decodeClaims = Schema.decodeUnknownResult(Claims)

export interface Authenticator {
  readonly verify: (token: string | undefined) => Effect.Effect<Identity, AuthFailed>
  /** Whether any token source is configured (production refuses to start without one unless anonymous). */
  readonly configured: boolean
}

export const identityFromClaims = (payload: JWTPayload): Identity | AuthFailed => {
  const claims = decodeClaims(payload)
  if (claims._tag === "Failure") {
    return new AuthFailed({ reason: "invalid_token", message: `token claims: ${claims.failure.message}` })
  }
  const { sub } = claims.success
  const read = [...(claims.success.channels ?? []), personalChannel(sub), broadcastChannel]
  return {
    user: sub,
    canRead: compile(read, sub),
    canPublish: compile(claims.success.publish ?? [], sub),
    expiresAt: typeof payload.exp === "number" ? payload.exp * 1000 : undefined
  }
}

/** An HS256 secret as a key getter: the key is imported once, on first use, and reused for every token. */
const importSecret = (secret: string): JWTVerifyGetKey => {
  let imported: Promise<CryptoKey> | undefined
  return () => {
    imported ??= crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["verify"]
    )
    return imported
  }
}

export const make = (options: AuthOptions): Authenticator => {
  // the secret is imported as a WebCrypto key once: given bytes or a KeyObject, jose imports it at every verify
  const key: JWTVerifyGetKey | undefined = options.secret
    ? importSecret(options.secret)
    : options.jwksUrl
      ? createRemoteJWKSet(new URL(options.jwksUrl))
      : undefined
  const anonymous: Identity | undefined = options.anonymous
    ? {
        user: null,
        canRead: compile([...options.anonymous.channels, broadcastChannel], null),
        canPublish: () => false,
        expiresAt: undefined
      }
    : undefined
  const verifyOptions = {
    // a shared secret verifies HS256 only (never an asymmetric algorithm's public key as an HMAC secret)
    ...(options.secret ? { algorithms: ["HS256"] } : {}),
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.audience ? { audience: options.audience } : {})
  }

  const verify = (token: string | undefined): Effect.Effect<Identity, AuthFailed> => {
    if (token === undefined || token === "") {
      return anonymous
        ? Effect.succeed(anonymous)
        : Effect.fail(new AuthFailed({ reason: "missing_token", message: "a token is required" }))
    }
    if (!key) {
      return Effect.fail(
        new AuthFailed({ reason: "misconfigured", message: "this server has no token secret or JWKS configured" })
      )
    }
    return Effect.tryPromise({
      try: () => jwtVerify(token, key, verifyOptions),
      catch: (error) => {
        const code = (error as { code?: string }).code
        return code === "ERR_JWT_EXPIRED"
          ? new AuthFailed({ reason: "expired_token", message: "the token has expired" })
          : new AuthFailed({ reason: "invalid_token", message: `invalid token: ${(error as Error).message}` })
      }
    }).pipe(
      Effect.flatMap(({ payload }) => {
        const identity = identityFromClaims(payload)
        return identity instanceof AuthFailed ? Effect.fail(identity) : Effect.succeed(identity)
      })
    )
  }
  return { verify, configured: key !== undefined }
}
