/**
 * A node's live feed over at-most-once announcements: per channel, it hands entries to local listeners in offset
 * order with no gap, filling gaps from the channel's history.
 *
 * Announcements (Redis PUBLISH) are lost while a node's subscriber connection is down, so each listener keeps the
 * position it was last given: an announcement with `offset <= last` in the same epoch is a duplicate (skipped),
 * `offset > last + 1` is a gap (filled from history first), another epoch is a reset (delivered: the caller
 * resets). After the subscriber reconnects, `resync` checks every channel's top and fills what was missed.
 *
 * It owns ordering and gap filling only. The pub/sub subscription, the history reads and the retry pacing come
 * from a `LiveFeedSource` (Redis.ts provides one), which keeps this file free of any Redis client. Work for one
 * channel is serialized; the fast path (no gap) delivers synchronously inside the message callback.
 */
import type { Position } from "../../protocol/Position.ts"
import type { Entry, Listener } from "../Transport.ts"

export interface LiveFeedSource {
  /** Subscribes the node's shared subscriber connection to the channel's announcements. */
  readonly subscribe: (channel: string) => Promise<void>
  /** Drops the subscription (best effort: a failure here only costs unused announcements). */
  readonly unsubscribe: (channel: string) => Promise<void>
  /** The channel's current top (creating its epoch when missing). */
  readonly top: (channel: string) => Promise<Position>
  /**
   * Entries after `after`, oldest first, at most `limit`, together with the channel's current epoch. When `after`
   * is not covered (trimmed, or another epoch), entries start at the oldest retained entry of the current epoch.
   */
  readonly readAfter: (
    channel: string,
    after: Position,
    limit: number
  ) => Promise<{ readonly epoch: string; readonly entries: ReadonlyArray<Entry> }>
  /** Reports a failed history read that will be retried, and a listener that threw. */
  readonly report: (message: string, cause: unknown) => void
}

export interface LiveFeedOptions {
  /** Entries per history read while filling a gap (default 500). */
  readonly fillBatch?: number
  /** Delay before retrying a failed history read; doubles up to `retryMaxMs` (default 100 ms). */
  readonly retryMinMs?: number
  /** Default 2000 ms. */
  readonly retryMaxMs?: number
}

interface ListenerState {
  readonly listener: Listener
  /** False until the listener's starting position is known; until then it receives nothing. */
  ready: boolean
  epoch: string
  offset: number
}

type Task = { readonly _tag: "Entry"; readonly entry: Entry } | { readonly _tag: "Sync" }

interface ChannelFeed {
  readonly channel: string
  /** Listeners registered or registering; the feed lives while this is above zero. */
  refs: number
  /** Copy-on-write, so a listener leaving during delivery never disturbs the loop in progress. */
  listeners: ReadonlyArray<ListenerState>
  readonly subscribed: Promise<void>
  tasks: Array<Task>
  running: boolean
  closed: boolean
  /** Announcements received, so a registering listener can tell whether it may have missed one. */
  announcements: number
}

export interface LiveFeed {
  /** Registers a listener; resolves once it will receive every entry appended from now on. Returns its release. */
  readonly add: (channel: string, listener: Listener) => Promise<() => void>
  /** Hands over one announcement received for `channel`. */
  readonly announce: (channel: string, entry: Entry) => void
  /** Channels with listeners (to subscribe again after a reconnect). */
  readonly channels: () => ReadonlyArray<string>
  /** Checks every channel for entries missed while announcements could not arrive, and delivers them. */
  readonly resync: () => void
  /** Stops all work; listeners receive nothing more. */
  readonly close: () => void
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export const make = (source: LiveFeedSource, options: LiveFeedOptions = {}): LiveFeed => {
  const fillBatch = options.fillBatch ?? 500
  const retryMinMs = options.retryMinMs ?? 100
  const retryMaxMs = options.retryMaxMs ?? 2000
  const feeds = new Map<string, ChannelFeed>()
  let closed = false

  /** Retries `attempt` until it succeeds or the feed is closed (then undefined). */
  const retrying = async <A>(feed: ChannelFeed, what: string, attempt: () => Promise<A>): Promise<A | undefined> => {
    let delay = retryMinMs
    while (!feed.closed) {
      try {
        return await attempt()
      } catch (cause) {
        if (feed.closed) return undefined
        source.report(`tidings redis live feed: ${what} for channel ${feed.channel} failed; retrying`, cause)
        await sleep(delay)
        delay = Math.min(delay * 2, retryMaxMs)
      }
    }
    return undefined
  }

  const call = (feed: ChannelFeed, state: ListenerState, entry: Entry): void => {
    state.epoch = entry.epoch
    state.offset = entry.offset
    try {
      state.listener(entry)
    } catch (cause) {
      source.report(`tidings redis live feed: a listener of ${feed.channel} threw`, cause)
    }
  }

  /**
   * Hands an entry to every listener it is new to: another epoch (a reset) or a later offset. A later offset that
   * is not the next one only reaches here after a fill, when history no longer had the entries in between.
   */
  const deliver = (feed: ChannelFeed, entry: Entry): void => {
    const listeners = feed.listeners
    for (let i = 0; i < listeners.length; i++) {
      const state = listeners[i]!
      if (state.ready && (state.epoch !== entry.epoch || entry.offset > state.offset)) call(feed, state, entry)
    }
  }

  /** Whether some listener lacks entries before `target` (inclusive) that history may still hold. */
  const behind = (feed: ChannelFeed, target: Position): boolean => {
    for (const state of feed.listeners) {
      if (!state.ready) continue
      if (state.epoch === target.epoch ? target.offset > state.offset : target.offset > 0) return true
    }
    return false
  }

  /** Delivers entries from history up to `target` (inclusive) to the listeners that lack them. */
  const fill = async (feed: ChannelFeed, target: Position): Promise<void> => {
    while (!feed.closed && behind(feed, target)) {
      let from = target.offset
      for (const state of feed.listeners) {
        if (state.ready) from = Math.min(from, state.epoch === target.epoch ? state.offset : 0)
      }
      const after: Position = { epoch: target.epoch, offset: from }
      const limit = Math.min(fillBatch, target.offset - from)
      const result = await retrying(feed, "reading missed entries", () => source.readAfter(feed.channel, after, limit))
      // Another epoch means the log was lost again meanwhile: later announcements (or the next sync) carry it.
      if (result === undefined || result.epoch !== target.epoch || result.entries.length === 0) return
      for (const entry of result.entries) {
        if (entry.offset > target.offset) return
        deliver(feed, entry)
      }
      if (result.entries[result.entries.length - 1]!.offset >= target.offset) return
    }
  }

  const drain = async (feed: ChannelFeed): Promise<void> => {
    if (feed.running) return
    feed.running = true
    try {
      while (feed.tasks.length > 0 && !feed.closed) {
        const task = feed.tasks[0]!
        if (task._tag === "Entry") {
          const entry = task.entry
          const previous: Position = { epoch: entry.epoch, offset: entry.offset - 1 }
          if (behind(feed, previous)) await fill(feed, previous)
          deliver(feed, entry)
        } else {
          const top = await retrying(feed, "reading the top", () => source.top(feed.channel))
          if (top !== undefined && behind(feed, top)) await fill(feed, top)
        }
        feed.tasks.shift()
      }
    } finally {
      feed.running = false
    }
  }

  const enqueue = (feed: ChannelFeed, task: Task): void => {
    feed.tasks.push(task)
    if (!feed.running) {
      drain(feed).catch((cause) => source.report(`tidings redis live feed: delivery on ${feed.channel} failed`, cause))
    }
  }

  const release = (feed: ChannelFeed, state: ListenerState | undefined): void => {
    if (state !== undefined) feed.listeners = feed.listeners.filter((s) => s !== state)
    feed.refs--
    if (feed.refs > 0 || feeds.get(feed.channel) !== feed) return
    feed.closed = true
    feeds.delete(feed.channel)
    if (!closed) {
      source.unsubscribe(feed.channel).catch((cause) => {
        source.report(`tidings redis live feed: unsubscribing from ${feed.channel} failed`, cause)
      })
    }
  }

  const acquire = (channel: string): ChannelFeed => {
    let feed = feeds.get(channel)
    if (feed === undefined) {
      feed = {
        channel,
        refs: 0,
        listeners: [],
        subscribed: source.subscribe(channel),
        tasks: [],
        running: false,
        closed: false,
        announcements: 0
      }
      // Registrations await this; an unobserved rejection must not surface as unhandled.
      feed.subscribed.catch(() => {})
      feeds.set(channel, feed)
    }
    feed.refs++
    return feed
  }

  return {
    add: async (channel, listener) => {
      if (closed) throw new Error("the Redis transport is closed")
      const feed = acquire(channel)
      let state: ListenerState | undefined
      try {
        await feed.subscribed
        const seen = feed.announcements
        state = { listener, ready: false, epoch: "", offset: 0 }
        feed.listeners = [...feed.listeners, state]
        const top = await source.top(channel)
        state.epoch = top.epoch
        state.offset = top.offset
        state.ready = true
        // An announcement handled while the top was being read may be one this listener should get.
        if (feed.announcements !== seen) enqueue(feed, { _tag: "Sync" })
      } catch (cause) {
        release(feed, state)
        throw cause
      }
      let released = false
      const registered = state
      return () => {
        if (released) return
        released = true
        release(feed, registered)
      }
    },
    announce: (channel, entry) => {
      const feed = feeds.get(channel)
      if (feed === undefined || feed.closed) return
      feed.announcements++
      enqueue(feed, { _tag: "Entry", entry })
    },
    channels: () => [...feeds.keys()],
    resync: () => {
      for (const feed of feeds.values()) enqueue(feed, { _tag: "Sync" })
    },
    close: () => {
      closed = true
      for (const feed of feeds.values()) feed.closed = true
      feeds.clear()
    }
  }
}
