/**
 * Baseline: a bare `ws` server doing the same broadcast as the tidings fan-out — what a user would write by hand.
 * Every event is JSON-encoded once and sent to every open socket as its own message (no envelope, no log, no
 * auth, no acks, no coalescing). Bound to 127.0.0.1; orchestrated through ../ipc.ts like bench/server.ts.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { WebSocketServer } from "ws"
import { flag, serve } from "../ipc.ts"
import { settledRss } from "../memory.ts"
import { fdLimit } from "../procstat.ts"
import { Publisher } from "../publisher.ts"

const http = createServer()
const wss = new WebSocketServer({ server: http, perMessageDeflate: false, maxPayload: 256 * 1024 })
wss.on("connection", (socket) => socket.on("error", () => socket.terminate()))
await new Promise<void>((resolve) => http.listen(Number(flag("port", "0")), "127.0.0.1", resolve))

let deliveries = 0
const publisher = new Publisher({
  publish: (target, data) => {
    if (target >= 0) throw new Error("the ws baseline only broadcasts")
    const text = JSON.stringify(data)
    for (const socket of wss.clients) {
      if (socket.readyState === 1) {
        socket.send(text)
        deliveries++
      }
    }
    return undefined
  }
})

serve(
  {
    stats: () => ({
      rss: process.memoryUsage().rss,
      heapUsed: process.memoryUsage().heapUsed,
      connections: wss.clients.size,
      deliveries
    }),
    gcRss: settledRss,
    ...publisher.commands()
  },
  { kind: "ws", port: (http.address() as AddressInfo).port, pid: process.pid, fdLimit: fdLimit() },
  Number(flag("deadline-ms", "600000")),
  async () => {
    for (const socket of wss.clients) socket.terminate()
    http.close()
  }
)
