/**
 * Plain counters the hot path bumps (no Effect per delivery). Metrics.ts exposes them in Prometheus format at
 * scrape time; tests and benches read them directly.
 */

export class Stats {
  connectionsOpen = 0
  connectionsOpened = 0
  readonly connectionsClosed = new Map<number, number>()
  framesIn = 0
  bytesIn = 0
  framesOut = 0
  bytesOut = 0
  messagesOut = 0
  deliveries = 0
  replayed = 0
  readonly resets = new Map<string, number>()
  readonly errors = new Map<string, number>()
  rateLimited = 0
  slowConsumerCloses = 0
  upgradesRefused = new Map<number, number>()
  commands = 0
  published = 0
  /** Server-Sent Events streams open, events sent on them, and streams cut off as slow readers. */
  sseOpen = 0
  sseDeliveries = 0
  sseSlowReaders = 0

  bump(map: Map<string, number>, key: string): void
  bump(map: Map<number, number>, key: number): void
  bump<K>(map: Map<K, number>, key: K): void {
    map.set(key, (map.get(key) ?? 0) + 1)
  }
}
