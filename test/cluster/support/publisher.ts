/**
 * A paced HTTP publisher for the cluster tests: it writes `tick {n}` events in batches through
 * `POST /v1/channels/:channel/events` with the API key, spreading requests over the live nodes.
 *
 * Each batch carries an `Idempotency-Key` (run, channel, first n), so a batch whose fate is unknown (its node died
 * mid-request, or the broker dropped while appending) is retried on another node without appending twice. A 503
 * (`retryable: true`, broker unreachable) is retried after `retryDelayMs`; a connection error marks the node
 * down for a while and retries elsewhere at once. Every failed attempt is recorded with its status, body and
 * latency, so fault tests can show exactly what a publisher saw. Batches of one channel are sent one after
 * another (never two in flight), so offsets follow `n`.
 *
 * Pacing: batches are released at `eventsPerSecond` (events, not requests), at most `inFlight` requests at once.
 */
import { sleep } from "./cluster.ts"

export interface Batch {
  readonly channel: string
  /** First `n` of the batch; the batch holds n = from .. from + count - 1. */
  readonly from: number
  readonly count: number
}

/** Events 1 to `total` of `channel` in batches of `size` (the last one shorter when `size` does not divide it). */
export const batchesOf = (channel: string, total: number, size: number): Array<Batch> =>
  Array.from({ length: Math.ceil(total / size) }, (_, i) => ({
    channel,
    from: i * size + 1,
    count: Math.min(size, total - i * size)
  }))

export interface FailedAttempt {
  /** Milliseconds since the publisher started. */
  readonly at: number
  readonly node: string
  /** HTTP status, or 0 for a connection error. */
  readonly status: number
  readonly ms: number
  readonly body: string
}

export interface PublisherOptions {
  /** HTTP base URLs of the nodes (`http://127.0.0.1:<port>`). */
  readonly nodes: ReadonlyArray<string>
  readonly apiKey: string
  /** Makes idempotency keys unique to one run. */
  readonly runId: string
  readonly eventsPerSecond: number
  readonly inFlight: number
  /** Pause before retrying after a 503 (default 200 ms). */
  readonly retryDelayMs?: number
  /** How long a node is skipped after a connection error (default 3 s). */
  readonly downForMs?: number
  /** A batch still failing after this long fails the run (default 60 s). */
  readonly giveUpAfterMs?: number
}

export class Publisher {
  /** Events acknowledged (HTTP 200). */
  acked = 0
  requests = 0
  readonly failures: Array<FailedAttempt> = []
  /** Acknowledged positions whose offset was not the event's `n` (a double append would show here). */
  misplacedAcks = 0
  private readonly downUntil = new Map<string, number>()
  private next = 0
  private started = performance.now()

  /** performance.now() when `run` started; FailedAttempt.at counts from here. */
  get startedAt(): number {
    return this.started
  }

  constructor(private readonly options: PublisherOptions) {}

  /** Sends every batch, paced; resolves when all are acknowledged, rejects if one gives up. */
  async run(batches: ReadonlyArray<Batch>, onAcked: (acked: number) => void = () => {}): Promise<void> {
    const { eventsPerSecond, inFlight } = this.options
    this.started = performance.now()
    const tails = new Map<string, Promise<void>>()
    const all: Array<Promise<void>> = []
    let running = 0
    const slotFreed: Array<() => void> = []
    let failure: unknown
    let released = 0
    for (const batch of batches) {
      if (failure !== undefined) break
      const due = this.started + (released / eventsPerSecond) * 1000
      const wait = due - performance.now()
      if (wait > 0) await sleep(wait)
      released += batch.count
      while (running >= inFlight) await new Promise<void>((resolve) => slotFreed.push(resolve))
      running++
      const previous = tails.get(batch.channel) ?? Promise.resolve()
      const sent = previous
        .then(() => this.send(batch))
        .then(
          () => onAcked(this.acked),
          (error: unknown) => {
            failure ??= error
          }
        )
        .finally(() => {
          running--
          slotFreed.shift()?.()
        })
      tails.set(batch.channel, sent)
      all.push(sent)
    }
    await Promise.all(all)
    if (failure !== undefined) throw failure
  }

  /** Milliseconds since `run` started. */
  elapsed(): number {
    return performance.now() - this.started
  }

  private pick(): string {
    const { nodes } = this.options
    const now = performance.now()
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[this.next++ % nodes.length]!
      if ((this.downUntil.get(node) ?? 0) <= now) return node
    }
    return nodes[this.next++ % nodes.length]!
  }

  private async send(batch: Batch): Promise<void> {
    const { apiKey, runId } = this.options
    const retryDelayMs = this.options.retryDelayMs ?? 200
    const giveUpAfterMs = this.options.giveUpAfterMs ?? 60_000
    const body = JSON.stringify(
      Array.from({ length: batch.count }, (_, i) => ({ event: "tick", data: { n: batch.from + i } }))
    )
    const key = `${runId}:${batch.channel}:${batch.from}`
    const first = performance.now()
    for (;;) {
      const node = this.pick()
      const t0 = performance.now()
      let status = 0
      let text = ""
      try {
        this.requests++
        const response = await fetch(`${node}/v1/channels/${encodeURIComponent(batch.channel)}/events`, {
          method: "POST",
          headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json", "idempotency-key": key },
          body,
          signal: AbortSignal.timeout(10_000)
        })
        status = response.status
        text = await response.text()
      } catch (error) {
        status = 0
        text = String((error as { cause?: unknown }).cause ?? error)
        this.downUntil.set(node, performance.now() + (this.options.downForMs ?? 3000))
      }
      if (status === 200) {
        const positions = (JSON.parse(text) as { positions: ReadonlyArray<{ offset: number }> }).positions
        positions.forEach((p, i) => {
          if (p.offset !== batch.from + i) this.misplacedAcks++
        })
        this.acked += batch.count
        return
      }
      this.failures.push({ at: t0 - this.started, node, status, ms: performance.now() - t0, body: text.slice(0, 300) })
      if (status !== 0 && status !== 503) {
        throw new Error(`publish to ${batch.channel} on ${node} answered ${status}: ${text.slice(0, 300)}`)
      }
      if (performance.now() - first > giveUpAfterMs) {
        throw new Error(`publish to ${batch.channel} still failing after ${giveUpAfterMs} ms: ${status} ${text}`)
      }
      // after a connection error the next node is tried at once, but never in a tight loop when all are down
      await sleep(status === 503 ? retryDelayMs : 20)
    }
  }
}

/**
 * Batches for channels with `counts` events each, `size` events per batch, interleaved so that every channel
 * progresses at the same pace (ordered by how far into its channel a batch is).
 */
export const interleave = (counts: ReadonlyMap<string, number>, size: number): Array<Batch> => {
  const batches: Array<Batch & { readonly progress: number }> = []
  for (const [channel, count] of counts) {
    for (let from = 1; from <= count; from += size) {
      batches.push({ channel, from, count: Math.min(size, count - from + 1), progress: from / count })
    }
  }
  batches.sort((a, b) => a.progress - b.progress)
  return batches.map(({ channel, from, count }) => ({ channel, from, count }))
}
