/**
 * Cross-origin access to the HTTP routes (SSE, presence, publish) for browser pages on other origins: the origins
 * a server allows (`corsOrigins`: exact origins, or "*" for any), answered with `Access-Control-Allow-Origin` on
 * their requests and a preflight answer for `OPTIONS`. Without it, browsers keep other origins out (an
 * EventSource from another origin closes for good).
 */
import type { IncomingMessage, ServerResponse } from "node:http"

const ALLOWED_HEADERS = "authorization, content-type, last-event-id, idempotency-key"

export type CorsCheck = (req: IncomingMessage, res: ServerResponse) => "preflight-answered" | "continue"

export const make = (origins: ReadonlyArray<string> | undefined): CorsCheck => {
  const any = origins?.includes("*") ?? false
  const allowed = new Set(origins ?? [])
  return (req, res) => {
    const origin = req.headers.origin
    if (origin === undefined || (!any && !allowed.has(origin))) return "continue"
    res.setHeader("access-control-allow-origin", any ? "*" : origin)
    if (!any) res.setHeader("vary", "origin")
    if (req.method !== "OPTIONS") return "continue"
    res
      .writeHead(204, {
        "access-control-allow-methods": "GET, POST",
        "access-control-allow-headers": ALLOWED_HEADERS,
        "access-control-max-age": "600"
      })
      .end()
    return "preflight-answered"
  }
}
