/**
 * Finds a free TCP port on 127.0.0.1 for a private server, below the kernel's ephemeral range (32768–60999 here).
 *
 * Why not port 0: the kernel hands out ephemeral ports to outgoing connections too, and the suite opens thousands.
 * A test that kills a broker and restarts it on the same port leaves that port free for a moment; an outgoing
 * connection of a parallel test could take it as its local port and the restart would fail (or, worse, a parallel
 * test's own server could start there and pass for the killed one). Ports 20000–32767 are never given to outgoing
 * connections, so only another test's pick can collide: a random pick, checked by binding, makes that rare.
 *
 * Rare is not enough when test files run side by side: a test that picks a port and starts its server seconds later
 * (a `tidings serve` under tsx takes ~12 s) left room for a parallel file to pick the same port, start first, and
 * answer the first test's readiness probe. So each vitest worker (VITEST_POOL_ID, 1 to maxWorkers) picks from its
 * own slice of the range: files running at the same time never pick the same port.
 */
import { createServer } from "node:net"

const FIRST = 20_000
const LAST = 32_767
/** Slices of the range, one per concurrent vitest worker (more workers than slices share them round-robin). */
const SLICES = 4

/** This process's part of the range: a slice per vitest worker, the whole range outside vitest. */
const slice = (): { low: number; high: number } => {
  const pool = Number(process.env.VITEST_POOL_ID)
  if (!Number.isInteger(pool) || pool < 1) return { low: FIRST, high: LAST }
  const size = Math.floor((LAST - FIRST + 1) / SLICES)
  const low = FIRST + ((pool - 1) % SLICES) * size
  return { low, high: low + size - 1 }
}
const { low: LOW, high: HIGH } = slice()

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
