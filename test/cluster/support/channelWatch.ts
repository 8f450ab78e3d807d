/**
 * A plain WebSocket subscriber for the broker-failover tests (no tidings client, so nothing reconnects or
 * de-duplicates behind the test's back): it subscribes to one channel from its start and records the `n` and the
 * offset of every `tick {n}` event, with the time of arrival; a `reset` or `error` frame is recorded, and an error
 * rejects the subscription. `tally` turns what one subscriber (or a fresh replay of the log) received into lost,
 * duplicated, out-of-order and misplaced (offset ≠ n) counts, for a channel that started empty and was written
 * with n = 1 … expected, in order.
 */
import WebSocket from "ws"

export interface SeenEvent {
  readonly n: number
  readonly offset: number
  /** performance.now() of its arrival. */
  readonly at: number
}

export interface ChannelWatch {
  readonly seen: Array<SeenEvent>
  /** Whether the socket closed. */
  readonly closed: () => boolean
  /** `reset` and `error` frames, as JSON. */
  readonly errors: Array<string>
  readonly close: () => void
}

/** Subscribes to `channel` on the node at `url` (`ws://…/ws`); resolves once `subscribed` arrives. */
export const watchChannel = (
  url: string,
  token: string,
  channel: string,
  since?: { readonly epoch: string; readonly offset: number }
) =>
  new Promise<ChannelWatch>((resolve, reject) => {
    const ws = new WebSocket(`${url}?token=${token}`)
    const seen: Array<SeenEvent> = []
    const errors: Array<string> = []
    let closed = false
    ws.on("message", (data) => {
      const frame = JSON.parse(data.toString()) as Record<string, unknown>
      if (frame.type === "welcome") {
        ws.send(JSON.stringify({ type: "subscribe", channel, ...(since ? { since } : { fromStart: true }) }))
      } else if (frame.type === "subscribed") {
        resolve({ seen, closed: () => closed, errors, close: () => ws.close() })
      } else if (frame.type === "event" && frame.channel === channel) {
        seen.push({ n: (frame.data as { n: number }).n, offset: frame.offset as number, at: performance.now() })
      } else if (frame.type === "error" || frame.type === "reset") {
        errors.push(JSON.stringify(frame))
        if (frame.type === "error") reject(new Error(JSON.stringify(frame)))
      }
    })
    ws.on("close", () => {
      closed = true
    })
    ws.on("error", reject)
  })

export interface Tally {
  readonly lost: number
  readonly duplicated: number
  readonly outOfOrder: number
  readonly misplaced: number
}

export const tally = (
  seen: ReadonlyArray<{ readonly n: number; readonly offset: number }>,
  expected: number
): Tally => {
  const counts = new Uint32Array(expected + 1)
  let outOfOrder = 0
  let misplaced = 0
  let highest = 0
  for (const { n, offset } of seen) {
    if (n < 1 || n > expected || offset !== n) misplaced++
    if (n < 1 || n > expected) continue
    counts[n]!++
    if (n < highest) outOfOrder++
    highest = Math.max(highest, n)
  }
  let lost = 0
  let duplicated = 0
  for (let n = 1; n <= expected; n++) {
    if (counts[n] === 0) lost++
    if (counts[n]! > 1) duplicated += counts[n]! - 1
  }
  return { lost, duplicated, outOfOrder, misplaced }
}

/** The sum of the tallies of many subscribers. */
export const tallyAll = (watches: ReadonlyArray<ChannelWatch>, expected: number): Tally => {
  const total = { lost: 0, duplicated: 0, outOfOrder: 0, misplaced: 0 }
  for (const w of watches) {
    const t = tally(w.seen, expected)
    total.lost += t.lost
    total.duplicated += t.duplicated
    total.outOfOrder += t.outOfOrder
    total.misplaced += t.misplaced
  }
  return total
}
