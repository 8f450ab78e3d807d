/**
 * A TCP proxy on 127.0.0.1 for fault tests: forwards every connection to a target, and can blackhole it — stop
 * forwarding in both directions without closing anything (bytes wait in the kernel's buffers, as on a link that
 * drops everything) — and restore it, when what waited is delivered, as after a healed partition.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net"

export interface TcpProxy {
  /** The proxy's port on 127.0.0.1. */
  readonly port: number
  readonly blackhole: () => void
  readonly restore: () => void
  readonly close: () => Promise<void>
}

export const startTcpProxy = async (target: { readonly host: string; readonly port: number }): Promise<TcpProxy> => {
  /** Each accepted connection with its upstream connection. */
  const pairs = new Set<readonly [Socket, Socket]>()
  let holed = false
  const connect = (client: Socket, upstream: Socket) => {
    client.pipe(upstream)
    upstream.pipe(client)
  }
  const server: Server = createServer((client) => {
    const upstream = createConnection(target)
    const pair = [client, upstream] as const
    pairs.add(pair)
    for (const socket of pair) {
      socket.on("error", () => socket.destroy())
      socket.on("close", () => {
        pairs.delete(pair)
        client.destroy()
        upstream.destroy()
      })
    }
    if (holed) for (const socket of pair) socket.pause()
    else connect(client, upstream)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as { port: number }).port
  return {
    port,
    blackhole: () => {
      holed = true
      // unpiped, or a drain would resume them; paused, they stop reading
      for (const [client, upstream] of pairs) {
        client.unpipe()
        upstream.unpipe()
        client.pause()
        upstream.pause()
      }
    },
    restore: () => {
      holed = false
      for (const [client, upstream] of pairs) connect(client, upstream)
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const pair of pairs) for (const socket of pair) socket.destroy()
        server.close(() => resolve())
      })
  }
}
