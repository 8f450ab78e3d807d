/**
 * `GET /v1/channels/<channel>/presence`: who is subscribed to a channel that has presence, on every node, as
 * `{channel, members}`. The same tokens and channel rights as a WebSocket subscription (`Authorization: Bearer`
 * or `?token=`): 401 without a valid token, 403 for a channel it may not read, 404 for a channel without presence,
 * 503 when the broker does not answer.
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { Effect } from "effect"
import type { Authenticator } from "../auth/index.ts"
import type { PresenceTracker } from "../presence/index.ts"

export const PATH = /^\/v1\/channels\/([^/]+)\/presence$/

export interface PresenceEnv {
  readonly presence: PresenceTracker | undefined
  readonly auth: Authenticator
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(body))
}

export const handle = (
  env: PresenceEnv,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  channel: string
): Effect.Effect<void> => {
  const header = req.headers.authorization
  const token = header?.startsWith("Bearer ") ? header.slice(7).trim() : (url.searchParams.get("token") ?? undefined)
  return env.auth.verify(token).pipe(
    Effect.matchEffect({
      onFailure: (error) => Effect.sync(() => json(res, 401, { error: error.reason, message: error.message })),
      onSuccess: (identity) => {
        if (!identity.canRead(channel)) {
          return Effect.sync(() =>
            json(res, 403, { error: "forbidden", message: `not allowed to read channel ${channel}` })
          )
        }
        const presence = env.presence
        if (presence === undefined || !presence.enabled(channel)) {
          return Effect.sync(() =>
            json(res, 404, { error: "no_presence", message: `channel ${channel} has no presence on this server` })
          )
        }
        return presence.members(channel).pipe(
          Effect.match({
            onFailure: (error) => json(res, 503, { error: "unavailable", message: error.message }),
            onSuccess: (members) => json(res, 200, { channel, members })
          })
        )
      }
    })
  )
}
