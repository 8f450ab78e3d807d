/**
 * Starts a tidings server for a test on 127.0.0.1 port 0 with the in-memory transport and the chat test
 * protocol, and hands back its URL, a token signer and the running service. Closing the returned scope shuts
 * it down.
 */
import { Effect, Layer } from "effect"
import { SignJWT } from "jose"
import type { Handlers } from "../../../src/server/Handlers.ts"
import type { Limits, Timing } from "../../../src/server/Options.ts"
import type { PresenceOptions } from "../../../src/server/presence/index.ts"
import * as Server from "../../../src/server/Server.ts"
import * as Memory from "../../../src/transports/Memory.ts"
import type { Transport, TransportOptions } from "../../../src/transports/Transport.ts"
import { ChatProtocol } from "./chatProtocol.ts"

export const SECRET = "test-secret-0123456789-abcdefghij"

export const sign = (claims: Record<string, unknown>, options: { expiresInSeconds?: number; secret?: string } = {}) => {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setIssuedAt()
  if (options.expiresInSeconds !== undefined)
    jwt.setExpirationTime(Math.floor(Date.now() / 1000) + options.expiresInSeconds)
  return jwt.sign(new TextEncoder().encode(options.secret ?? SECRET))
}

export const chatHandlers: Handlers<typeof ChatProtocol> = {
  send: (payload, ctx) =>
    ctx.canRead(payload.channel)
      ? ctx
          .publish(payload.channel, payload.loud ? "shout" : "said", { from: ctx.user ?? "anon", body: payload.body })
          .pipe(
            Effect.map((p) => ({ offset: p.offset })),
            Effect.orDie
          )
      : Effect.fail({ _tag: "NotAllowed" as const, reason: `cannot write ${payload.channel}` }),
  fail: () => Effect.fail({ _tag: "NotAllowed" as const, reason: "always fails" }),
  boom: () => Effect.die(new Error("handler defect")),
  slow: (payload) => Effect.sleep(payload.ms).pipe(Effect.as({ done: true }))
}

export interface TestServerOptions {
  readonly limits?: Partial<Limits>
  readonly timing?: Partial<Timing>
  readonly transport?: TransportOptions
  readonly anonymous?: boolean
  readonly transportLayer?: Layer.Layer<Transport>
  readonly presence?: PresenceOptions<typeof ChatProtocol>
}

/**
 * Presence on `channels` for the chat protocol: a join is announced as `said {from: <user>, body: "joined <id>"}`,
 * a leave as `said {from: <user>, body: "left <id>"}` (the member's connection id).
 */
export const chatPresence = (channels: string, expiryMs?: number): PresenceOptions<typeof ChatProtocol> => ({
  rules: [
    {
      channels,
      join: (member) => ({ event: "said", data: { from: member.user ?? "anonymous", body: `joined ${member.id}` } }),
      leave: (member) => ({ event: "said", data: { from: member.user ?? "anonymous", body: `left ${member.id}` } })
    }
  ],
  ...(expiryMs === undefined ? {} : { expiryMs })
})

export const testServerLayer = (options: TestServerOptions = {}) =>
  Server.layer({
    protocol: ChatProtocol,
    handlers: chatHandlers,
    port: 0,
    auth: { secret: SECRET, ...(options.anonymous ? { anonymous: { channels: ["public:*"] } } : {}) },
    apiKey: "test-api-key",
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.timing ? { timing: options.timing } : {}),
    ...(options.presence ? { presence: options.presence } : {})
  }).pipe(Layer.provide(options.transportLayer ?? Memory.layer(options.transport)))
