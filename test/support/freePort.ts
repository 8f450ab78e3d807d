/**
 * Finds a free TCP port on 127.0.0.1 for a private server, below the kernel's ephemeral range (32768–60999 here).
 *
 * Why not port 0: the kernel hands out ephemeral ports to outgoing connections too, and the suite opens thousands.
 * A test that kills a broker and restarts it on the same port leaves that port free for a moment; an outgoing
 * connection of a parallel test could take it as its local port and the restart would fail (or, worse, a parallel
 * test's own server could start there and pass for the killed one). Ports 20000–32767 are never given to outgoing
 * connections, so only another test's pick can collide: a random pick, checked by binding, makes that rare.
 */
import { createServer } from "node:net"

const LOW = 20_000
const HIGH = 32_767

const tryBind = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const server = createServer()
    server.unref()
    server.once("error", () => resolve(false))
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)))
  })

/** Ports this process handed out already: never handed out twice, even once free again. */
const handedOut = new Set<number>()

export const freePort = async (): Promise<number> => {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1))
    if (handedOut.has(port)) continue
    if (await tryBind(port)) {
      handedOut.add(port)
      return port
    }
  }
  throw new Error(`no free port in ${LOW}–${HIGH} after 200 tries`)
}
