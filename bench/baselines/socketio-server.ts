/**
 * Baseline: Socket.IO 4.8 doing the same broadcast as the tidings fan-out, the way its users do it: `io.emit`
 * (the packet is encoded once per broadcast and written to every client), WebSocket transport only, no
 * compression. Bound to 127.0.0.1; orchestrated through ../ipc.ts like bench/server.ts. The load generator speaks
 * Engine.IO v4 directly (loadgen/socketioClient.ts).
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { Server } from "socket.io"
import { flag, serve } from "../ipc.ts"
import { settledRss } from "../memory.ts"
import { fdLimit } from "../procstat.ts"
import { Publisher } from "../publisher.ts"

const http = createServer()
const io = new Server(http, {
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false
})
await new Promise<void>((resolve) => http.listen(Number(flag("port", "0")), "127.0.0.1", resolve))

let deliveries = 0
const publisher = new Publisher({
  publish: (target, data) => {
    if (target >= 0) throw new Error("the Socket.IO baseline only broadcasts")
    io.emit("tick", data)
    deliveries += io.engine.clientsCount
    return undefined
  }
})

serve(
  {
    stats: () => ({
      rss: process.memoryUsage().rss,
      heapUsed: process.memoryUsage().heapUsed,
      connections: io.engine.clientsCount,
      deliveries
    }),
    gcRss: settledRss,
    ...publisher.commands()
  },
  { kind: "socketio", port: (http.address() as AddressInfo).port, pid: process.pid, fdLimit: fdLimit() },
  Number(flag("deadline-ms", "600000")),
  async () => {
    io.disconnectSockets(true)
    io.close()
  }
)
