/**
 * A server's resident memory, settled: full GCs with pauses between them until RSS stops moving (V8 returns freed
 * pages to the OS lazily, so one GC right after start-up or a burst of connections reads high). Every server under
 * test answers the orchestrator's `gcRss` with this; it needs node's --expose-gc.
 */

const gc = (globalThis as { gc?: () => void }).gc

export const settledRss = async (): Promise<{ rss: number; gc: boolean }> => {
  let last = Number.POSITIVE_INFINITY
  for (let i = 0; i < 12; i++) {
    gc?.()
    await new Promise((resolve) => setTimeout(resolve, 150))
    const rss = process.memoryUsage().rss
    if (Math.abs(rss - last) < last * 0.002) return { rss, gc: gc !== undefined }
    last = rss
  }
  return { rss: process.memoryUsage().rss, gc: gc !== undefined }
}
