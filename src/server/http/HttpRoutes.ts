/**
 * Plain HTTP routes beside the WebSocket endpoint: liveness (`GET /healthz`), readiness (`GET /readyz`:
 * transport reachable and not draining, answered at once from state kept in the background, TransportHealth.ts),
 * Prometheus metrics (`GET /metrics`), publishing (`POST /v1/channels/:channel/events`, HttpPublish.ts) and
 * the channel as Server-Sent Events (`GET` on the same URL, Sse.ts).
 * Returns false for a request it does not own.
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { Effect, type Fiber } from "effect"
import * as Cors from "./Cors.ts"
import * as HttpPresence from "./HttpPresence.ts"
import * as HttpPublish from "./HttpPublish.ts"
import type { Metrics } from "./Metrics.ts"
import * as Sse from "./Sse.ts"
import type { TransportHealth } from "./TransportHealth.ts"

export interface RoutesEnv extends HttpPublish.PublishEnv, HttpPresence.PresenceEnv {
  readonly ready: () => boolean
  /** What else readiness depends on (the run storage), from state kept in the background. */
  readonly dependencies: () => ReadonlyArray<{
    readonly name: string
    readonly ready: boolean
    readonly reason?: string
  }>
  readonly transportHealth: TransportHealth
  /** `GET` on a channel's events URL as Server-Sent Events. */
  readonly sse: Sse.SseStreams
  readonly metrics: Metrics
  /** Origins whose pages may call the routes (Cors.ts); none by default. */
  readonly corsOrigins: ReadonlyArray<string> | undefined
  readonly run: <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(body))
}

/** The channel named in a URL, percent-decoded; undefined after answering 400 when it cannot be decoded. */
const channelOf = (res: ServerResponse, encoded: string): string | undefined => {
  try {
    return decodeURIComponent(encoded)
  } catch {
    json(res, 400, { error: "bad_channel", message: "the channel is not valid percent-encoding" })
    return undefined
  }
}

export const make = (env: RoutesEnv) => {
  const cors = Cors.make(env.corsOrigins)
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = new URL(req.url ?? "/", "http://localhost")
    if (url.pathname.startsWith("/v1/") && cors(req, res) === "preflight-answered") return true
    if (req.method === "GET" && url.pathname === "/healthz") {
      json(res, 200, { status: "ok" })
      return true
    }
    if (req.method === "GET" && url.pathname === "/readyz") {
      const transport = env.transportHealth.current()
      const dependencies = env.dependencies()
      const ready = transport.ok && env.ready() && dependencies.every((d) => d.ready)
      const body: Record<string, unknown> = {
        ready,
        transport: transport.ok ? "ok" : (transport.reason ?? "unreachable"),
        draining: !env.ready()
      }
      for (const d of dependencies) body[d.name] = d.ready ? "ok" : (d.reason ?? "not ready")
      json(res, ready ? 200 : 503, body)
      return true
    }
    if (req.method === "GET" && url.pathname === "/metrics") {
      env.run(
        Effect.promise(() => env.metrics.render()).pipe(
          Effect.map((text) => res.writeHead(200, { "content-type": env.metrics.registry.contentType }).end(text))
        )
      )
      return true
    }
    const presence = req.method === "GET" ? HttpPresence.PATH.exec(url.pathname) : null
    if (presence) {
      const channel = channelOf(res, presence[1]!)
      if (channel !== undefined) env.run(HttpPresence.handle(env, req, res, url, channel))
      return true
    }
    const publish = HttpPublish.PATH.exec(url.pathname)
    if (publish) {
      const streaming = req.method === "GET" && Sse.wantsStream(req, url)
      if (req.method !== "POST" && !streaming) {
        res.writeHead(405, { allow: "POST, GET", "content-type": "application/json" }).end(
          JSON.stringify({
            error: "method_not_allowed",
            message: "POST publishes; GET with Accept: text/event-stream streams the channel"
          })
        )
        return true
      }
      const channel = channelOf(res, publish[1]!)
      if (channel === undefined) return true
      if (streaming) env.sse.handle(req, res, url, channel)
      else env.run(HttpPublish.handle(env, req, res, channel))
      return true
    }
    return false
  }
}
