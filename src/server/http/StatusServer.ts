/**
 * The HTTP endpoint of a process that holds no sockets (a worker): `GET /healthz`, `GET /readyz` (transport and
 * run storage, both from checks made in the background, so it answers at once) and `GET /metrics` (runs and process). Everything else is
 * 404: a worker takes no WebSocket upgrades and no publishes.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect } from "effect"
import { Registry } from "prom-client"
import type { RunsStatusShape } from "../../runs/RunsStatus.ts"
import type { TransportShape } from "../../transports/Transport.ts"
import * as RunMetrics from "./RunMetrics.ts"
import * as TransportHealth from "./TransportHealth.ts"

export interface StatusServerOptions {
  readonly host?: string
  readonly port: number
  readonly transport: TransportShape
  readonly runs: RunsStatusShape
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(body))
}

/** Listens until the scope closes; returns the bound port. */
export const make = (options: StatusServerOptions) =>
  Effect.gen(function* () {
    const health = yield* TransportHealth.make(options.transport)
    const registry = new Registry()
    RunMetrics.register(registry, options.runs)
    let closing = false
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      const path = new URL(req.url ?? "/", "http://localhost").pathname
      if (req.method === "GET" && path === "/healthz") return json(res, 200, { status: "ok" })
      if (req.method === "GET" && path === "/readyz") {
        const transport = health.current()
        const runs = options.runs.readiness()
        const ready = transport.ok && runs.ready && !closing
        json(res, ready ? 200 : 503, {
          ready,
          role: options.runs.role,
          transport: transport.ok ? "ok" : (transport.reason ?? "unreachable"),
          runs: runs.ready ? "ok" : (runs.reason ?? "not ready"),
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
      json(res, 404, { error: "not_found", message: "a worker serves /healthz, /readyz and /metrics only" })
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
