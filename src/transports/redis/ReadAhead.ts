/**
 * Read-ahead for paged replay: when a read returns a full page that stops short of the channel's top, the next
 * page is requested at once, so Redis builds it while the caller handles this one; the next read asking for
 * exactly that page (same channel, epoch, offset and limit) takes it instead of asking Redis again.
 *
 * Bounded and short-lived: at most `maxPages` pages wait at once (further read-aheads are skipped, not queued),
 * and a page is served only within `maxAgeMs` of the read that started it (caller's Clock) and dropped after
 * that (a timer, so an abandoned replay holds no memory). A page served from here is what a read would have
 * returned when it was started: the same entries, and a top at most `maxAgeMs` old. A failed read-ahead is
 * dropped silently; the next read asks Redis itself. It knows nothing of Redis: Redis.ts supplies `fetch`.
 */
import type { Position } from "../../protocol/Position.ts"
import type { ReadResult } from "../Transport.ts"

export type Fetch = (channel: string, since: Position | undefined, limit: number, now: number) => Promise<ReadResult>

export interface ReadAheadOptions {
  /** Pages waiting at once, over all channels (default 64). */
  readonly maxPages?: number
  /** How long a page may wait for its read (default 1000 ms). */
  readonly maxAgeMs?: number
}

interface Page {
  readonly epoch: string
  readonly limit: number
  readonly startedAt: number
  readonly result: Promise<ReadResult>
}

export const make = (fetch: Fetch, options: ReadAheadOptions = {}): Fetch => {
  const maxPages = options.maxPages ?? 64
  const maxAgeMs = options.maxAgeMs ?? 1000
  const pages = new Map<string, Page>()
  const keyOf = (channel: string, offset: number) => `${offset}:${channel}`

  const start = (channel: string, after: Position, limit: number, now: number): void => {
    const key = keyOf(channel, after.offset)
    if (pages.size >= maxPages || pages.has(key)) return
    const result = fetch(channel, after, limit, now)
    const page: Page = { epoch: after.epoch, limit, startedAt: now, result }
    pages.set(key, page)
    const drop = () => {
      if (pages.get(key) === page) pages.delete(key)
    }
    result.catch(drop)
    setTimeout(drop, maxAgeMs).unref()
  }

  const read: Fetch = async (channel, since, limit, now) => {
    let result: Promise<ReadResult> | undefined
    if (since !== undefined) {
      const key = keyOf(channel, since.offset)
      const page = pages.get(key)
      if (
        page !== undefined &&
        page.epoch === since.epoch &&
        page.limit === limit &&
        now - page.startedAt <= maxAgeMs
      ) {
        pages.delete(key)
        result = page.result.catch(() => fetch(channel, since, limit, now))
      }
    }
    const page = await (result ?? fetch(channel, since, limit, now))
    const last = page.entries[page.entries.length - 1]
    if (last !== undefined && page.entries.length === limit && last.offset < page.top.offset) {
      start(channel, { epoch: last.epoch, offset: last.offset }, limit, now)
    }
    return page
  }
  return read
}
