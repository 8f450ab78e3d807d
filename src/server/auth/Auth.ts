/**
 * Authentication: turns a JWT (or its absence) into an Identity — who the user is, which channels it may read
 * and publish to, and when its token expires. JWTs are verified against a shared secret (HS256, synchronously by
 * fast-jwt in SharedSecretTokens.ts, with jose's answers) or a JWKS URL (by jose). Claims: `sub` (user id,
 * required), `channels` (read patterns), `publish` (publish patterns), `info` (an object shown in presence).
 * Every identity may also read its personal channel `user:<sub>` and the `broadcast` channel.
 * Where a token is read from (header, query, frame) is the server's business, not this module's.
 */
import { Effect, Schema } from "effect"
import { createRemoteJWKSet, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from "jose"
import { broadcastChannel, compile, isPersonalChannel, type Matcher, never } from "./ChannelPattern.ts"
import * as SharedSecretTokens from "./SharedSecretTokens.ts"

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

/**
 * Who a connection is and what it may do. A class, so an identity costs four fields and no closures (the matchers
 * are shared between identities with the same patterns; the personal channel is checked without being built).
 */
export class Identity {
  constructor(
    /** The token's subject, or null for an anonymous connection. */
    readonly user: string | null,
    private readonly reads: Matcher,
    private readonly publishes: Matcher,
    /** Token expiry in ms since the epoch; undefined when the token does not expire or for anonymous. */
    readonly expiresAt: number | undefined,
    /** The token's `info` claim (shown to others in presence: a display name, an avatar URL), if it had one. */
    readonly info?: Readonly<Record<string, unknown>>
  ) {}

  /** Whether the identity may read `channel`: its patterns, `broadcast`, or its personal channel. */
  canRead(channel: string): boolean {
    return (this.user !== null && isPersonalChannel(channel, this.user)) || this.reads(channel)
  }

  canPublish(channel: string): boolean {
    return this.publishes(channel)
  }
}

export class AuthFailed extends Schema.TaggedError<AuthFailed>()("AuthFailed", {
  reason: Schema.Literals(["missing_token", "invalid_token", "expired_token", "misconfigured"]),
  message: Schema.String
}) {}

const Claims = Schema.Struct({
  sub: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(256)),
  channels: Schema.optionalKey(Schema.Array(Schema.String)),
  publish: Schema.optionalKey(Schema.Array(Schema.String)),
  info: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown))
})

/** Largest `info` claim, as JSON: presence carries it to every member's query. */
const MAX_INFO_BYTES = 1024
const decodeClaims = Schema.decodeUnknownResult(Claims)

export interface Authenticator {
  readonly verify: (token: string | undefined) => Effect.Effect<Identity, AuthFailed>
  /**
   * The same answer without an Effect, where no I/O is needed (a shared secret, or no token at all); undefined
   * when tokens are checked against a JWKS URL. The upgrade path uses it to accept without forking a fiber.
   */
  readonly verifySync: ((token: string | undefined) => Identity | AuthFailed) | undefined
  /** Whether any token source is configured (production refuses to start without one unless anonymous). */
  readonly configured: boolean
  /** Who a connection without a token is, where anonymous access is allowed. */
  readonly anonymous: Identity | undefined
}

export const identityFromClaims = (payload: JWTPayload): Identity | AuthFailed => {
  const claims = decodeClaims(payload)
  if (claims._tag === "Failure") {
    return new AuthFailed({ reason: "invalid_token", message: `token claims: ${claims.failure.message}` })
  }
  const { sub, info } = claims.success
  if (info !== undefined && JSON.stringify(info).length > MAX_INFO_BYTES) {
    return new AuthFailed({ reason: "invalid_token", message: `token claims: info is over ${MAX_INFO_BYTES} bytes` })
  }
  return new Identity(
    sub,
    compile([...(claims.success.channels ?? []), broadcastChannel], sub),
    compile(claims.success.publish ?? [], sub),
    typeof payload.exp === "number" ? payload.exp * 1000 : undefined,
    info
  )
}

export const make = (options: AuthOptions): Authenticator => {
  const hs256 = options.secret
    ? SharedSecretTokens.verifier(options.secret, { issuer: options.issuer, audience: options.audience })
    : undefined
  const jwks: JWTVerifyGetKey | undefined =
    !hs256 && options.jwksUrl ? createRemoteJWKSet(new URL(options.jwksUrl)) : undefined
  const anonymous: Identity | undefined = options.anonymous
    ? new Identity(null, compile([...options.anonymous.channels, broadcastChannel], null), never, undefined)
    : undefined
  const jwksOptions = {
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.audience ? { audience: options.audience } : {})
  }

  /** An answer that needs no I/O: no token, no key configured, or an HS256 token; undefined for a JWKS token. */
  const answerNow = (token: string | undefined): Identity | AuthFailed | undefined => {
    if (token === undefined || token === "") {
      return anonymous ?? new AuthFailed({ reason: "missing_token", message: "a token is required" })
    }
    if (hs256) {
      const result = hs256(token)
      return result.ok
        ? identityFromClaims(result.payload)
        : new AuthFailed({
            reason: result.reason,
            message: result.reason === "expired_token" ? "the token has expired" : `invalid token: ${result.message}`
          })
    }
    if (!jwks) {
      return new AuthFailed({ reason: "misconfigured", message: "this server has no token secret or JWKS configured" })
    }
    return undefined
  }

  const verifyJwks = (token: string, key: JWTVerifyGetKey): Effect.Effect<Identity, AuthFailed> =>
    Effect.tryPromise({
      try: () => jwtVerify(token, key, jwksOptions),
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

  const verify = (token: string | undefined): Effect.Effect<Identity, AuthFailed> =>
    Effect.suspend(() => {
      const answer = answerNow(token)
      if (answer === undefined) return verifyJwks(token!, jwks!)
      return answer instanceof AuthFailed ? Effect.fail(answer) : Effect.succeed(answer)
    })

  return {
    verify,
    verifySync: jwks ? undefined : (token) => answerNow(token)!,
    configured: hs256 !== undefined || jwks !== undefined,
    anonymous
  }
}
