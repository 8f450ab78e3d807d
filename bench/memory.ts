/**
 * A server's resident memory, settled: full GCs with pauses between them until RSS stops moving (V8 returns freed
 * pages to the OS lazily, so one GC right after start-up or a burst of connections reads high). Every server under
 * test answers the orchestrator's `gcRss` with this; it needs node's --expose-gc.
 *
 * It also reports the young generation's resident pages. They hold nothing after a full GC, and how many stay
 * mapped follows the recent allocation rate (V8 grows the semi-spaces while connections pour in), not the number
 * of connections: on the bench machine they alone moved a 5,000-connection server's RSS by 2 to 11 MiB between
 * runs of the same server (bare ws: 0.35 to 2.17 KiB per connection). The per-connection figure leaves them out.
 */
import { getHeapSpaceStatistics } from "node:v8"

const gc = (globalThis as { gc?: () => void }).gc

export interface SettledMemory {
  readonly rss: number
  /** Resident bytes of V8's young generation (new space and new large-object space), empty after the GC. */
  readonly young: number
  readonly gc: boolean
}

const youngResident = (): number => {
  let bytes = 0
  for (const space of getHeapSpaceStatistics()) {
    if (space.space_name === "new_space" || space.space_name === "new_large_object_space") {
      bytes += space.physical_space_size
    }
  }
  return bytes
}

export const settledRss = async (): Promise<SettledMemory> => {
  let last = Number.POSITIVE_INFINITY
  for (let i = 0; i < 12; i++) {
    gc?.()
    await new Promise((resolve) => setTimeout(resolve, 150))
    const rss = process.memoryUsage().rss
    if (Math.abs(rss - last) < last * 0.002) return { rss, young: youngResident(), gc: gc !== undefined }
    last = rss
  }
  return { rss: process.memoryUsage().rss, young: youngResident(), gc: gc !== undefined }
}
