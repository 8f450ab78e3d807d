/**
 * Plain HTTP routes beside the WebSocket endpoint: liveness (`GET /healthz`) and readiness (`GET /readyz`:
 * transport reachable and not draining). Returns false for a request it does not own.
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { Effect, type Fiber } from "effect"
import type { TransportShape } from "../transports/Transport.ts"
import type { Authenticator } from "./Auth.ts"
import type { Publisher } from "./Publisher.ts"
import type { Stats } from "./Stats.ts"

export interface RoutesEnv {
  readonly ready: () => boolean
  readonly transport: TransportShape
  readonly stats: Stats
  readonly publisher: Publisher
  readonly auth: Authenticator
  readonly apiKey: string | undefined
  readonly run: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(body))
}

export const make =
  (env: RoutesEnv) =>
  (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = new URL(req.url ?? "/", "http://localhost")
    if (req.method === "GET" && url.pathname === "/healthz") {
      json(res, 200, { status: "ok" })
      return true
    }
    if (req.method === "GET" && url.pathname === "/readyz") {
      env.run(
        Effect.map(env.transport.healthy, (healthy) => {
          const ready = healthy && env.ready()
          json(res, ready ? 200 : 503, { ready, transport: healthy ? "ok" : "unreachable", draining: !env.ready() })
        })
      )
      return true
    }
    return false
  }
