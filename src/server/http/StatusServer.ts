/**
 * The HTTP endpoint of a process that holds no sockets (a worker, a bridge process): `GET /healthz`, `GET /readyz`
 * (transport, run storage, bridges: from state kept in the background, so it answers at once) and `GET /metrics`. Everything else is
 * 404: a worker takes no WebSocket upgrades and no publishes.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect } from "effect"
import { Registry } from "prom-client"
import type { BridgesShape } from "../../bridges/Bridges.ts"
import type { RunsStatusShape } from "../../runs/RunsStatus.ts"
import type { TransportShape } from "../../transports/Transport.ts"
import * as RunMetrics from "./RunMetrics.ts"
import * as TransportHealth from "./TransportHealth.ts"

export interface StatusServerOptions {
  readonly host?: string
  readonly port: number
  readonly transport: TransportShape
  /** Runs hosted by this process (a worker). */
  readonly runs?: RunsStatusShape | undefined
  /** Bridges running in this process (`tidings bridge`). */
  readonly bridges?: BridgesShape | undefined
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(body))
}

/** Listens until the scope closes; returns the bound port. */
export const make = (options: StatusServerOptions) =>
  Effect.gen(function* () {
    const health = yield* TransportHealth.make(options.transport)
    const registry = new Registry()
    if (options.runs) RunMetrics.register(registry, options.runs)
    options.bridges?.registerMetrics(registry)
    let closing = false
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      const path = new URL(req.url ?? "/", "http://localhost").pathname
      if (req.method === "GET" && path === "/healthz") return json(res, 200, { status: "ok" })
      if (req.method === "GET" && path === "/readyz") {
        const transport = health.current()
        const runs = options.runs?.readiness()
        const bridges = options.bridges?.readiness()
        const ready = transport.ok && (runs?.ready ?? true) && (bridges?.ready ?? true) && !closing
        json(res, ready ? 200 : 503, {
          ready,
          role: options.runs?.role ?? "bridge",
          transport: transport.ok ? "ok" : (transport.reason ?? "unreachable"),
          ...(runs ? { runs: runs.ready ? "ok" : (runs.reason ?? "not ready") } : {}),
          ...(bridges ? { bridges: bridges.ready ? "ok" : (bridges.reason ?? "not ready") } : {}),
          draining: closing
        })
        return
      }
      if (req.method === "GET" && path === "/metrics") {
        void registry.metrics().then(
          (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
          (error: unknown) => json(res, 500, { error: "internal", message: String(error) })
        )
        return
      }
      json(res, 404, { error: "not_found", message: "this process serves /healthz, /readyz and /metrics only" })
    }
    const http = createServer(onRequest)
    const port = yield* Effect.acquireRelease(
      Effect.callback<number, Error>((resume) => {
        const onError = (error: Error) => resume(Effect.fail(error))
        http.once("error", onError)
        http.listen({ port: options.port, host: options.host ?? "127.0.0.1" }, () => {
          http.off("error", onError)
          resume(Effect.succeed((http.address() as AddressInfo).port))
        })
      }),
      () =>
        Effect.callback<void>((resume) => {
          closing = true
          http.close(() => resume(Effect.void))
          http.closeAllConnections()
        })
    )
    return { port }
  })
