/**
 * A Server-Sent Events reader for tests, as curl would read: `GET <path>` on 127.0.0.1 with
 * `Accept: text/event-stream`, what arrives parsed into messages (id, event, JSON data) until it is closed.
 */
import { request } from "node:http"
import { Effect } from "effect"

export interface Message {
  readonly id?: string
  readonly event: string
  readonly data: unknown
}

export interface Stream {
  readonly status: number
  readonly messages: Array<Message>
  readonly body: () => string
  readonly close: () => void
}

/** Opens `GET <path>` and parses what arrives as SSE messages until closed. */
export const openStream = (port: number, path: string, headers: Record<string, string> = {}) =>
  Effect.promise(
    () =>
      new Promise<Stream>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port, path, headers: { accept: "text/event-stream", ...headers } })
        req.on("error", reject)
        req.on("response", (res) => {
          const messages: Array<Message> = []
          let raw = ""
          let pending = ""
          res.setEncoding("utf8")
          res.on("data", (chunk: string) => {
            raw += chunk
            pending += chunk
            let end = pending.indexOf("\n\n")
            while (end >= 0) {
              const block = pending.slice(0, end)
              pending = pending.slice(end + 2)
              const fields = new Map<string, string>()
              for (const line of block.split("\n")) {
                if (line.startsWith(":") || line === "") continue
                const at = line.indexOf(":")
                fields.set(line.slice(0, at), line.slice(at + 1).trimStart())
              }
              if (fields.has("data")) {
                messages.push({
                  ...(fields.has("id") ? { id: fields.get("id")! } : {}),
                  event: fields.get("event") ?? "message",
                  data: JSON.parse(fields.get("data")!)
                })
              }
              end = pending.indexOf("\n\n")
            }
          })
          resolve({ status: res.statusCode ?? 0, messages, body: () => raw, close: () => req.destroy() })
        })
        req.end()
      })
  )
