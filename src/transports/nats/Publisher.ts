/**
 * JetStream publishes with acks matched on one shared reply subscription: the transport's append hot path.
 *
 * `js.publish` in nats.js goes through a generic request (a timer and, on every reply, an Error with a stack
 * trace built and thrown away), which halves publish throughput. Here each publish is a plain NATS publish with
 * a reply subject `<inbox>.<token>`; one subscription on `<inbox>.*` resolves the waiting promise from the ack,
 * and one interval rejects the ones past their deadline. Errors carry the same shapes the rest of the transport
 * understands: a `JetStreamApiError` for a refused publish, an Error named "NoRespondersError" when no stream
 * captures the subject, and one named "TimeoutError" past the deadline.
 */
import { type ApiError, JetStreamApiError, type PubAck } from "@nats-io/jetstream"
import { createInbox, type MsgHdrs, MsgHdrsImpl, type NatsConnection, type Subscription } from "@nats-io/transport-node"

interface Waiting {
  readonly resolve: (ack: PubAck) => void
  readonly reject: (error: Error) => void
  readonly deadline: number
}

interface AckBody {
  readonly stream?: string
  readonly seq?: number
  readonly duplicate?: boolean
  readonly error?: ApiError
}

class NamedError extends Error {
  constructor(name: string, message: string) {
    super(message)
    this.name = name
  }
}

/** Headers built without nats.js's per-call validation: every value here is already a safe header value. */
export const fastHeaders = (values: ReadonlyArray<readonly [string, string]>): MsgHdrs => {
  const headers = new MsgHdrsImpl()
  for (const [key, value] of values) headers.headers.set(key, [value])
  return headers
}

/** Reads one header without nats.js's per-call key scan (same result as `headers.get(key)`). */
export const headerValue = (headers: MsgHdrs, key: string): string =>
  headers instanceof MsgHdrsImpl ? (headers.headers.get(key)?.[0] ?? "") : headers.get(key)

export class Publisher {
  private readonly inbox: string
  private readonly waiting = new Map<string, Waiting>()
  private readonly sweeper: ReturnType<typeof setInterval>
  private readonly subscription: Subscription
  private counter = 0
  /** Set by `failStale`: publishes sent before this and unanswered `staleGraceMs` later are failed by the sweeper. */
  private staleBefore: number | undefined
  private staleGraceMs = 0

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number
  ) {
    this.inbox = createInbox()
    this.subscription = nc.subscribe(`${this.inbox}.*`, {
      callback: (error, message) => {
        if (error !== null) return
        const token = message.subject.slice(this.inbox.length + 1)
        const waiting = this.waiting.get(token)
        if (waiting === undefined) return
        this.waiting.delete(token)
        if (message.data.length === 0 && message.headers?.code === 503) {
          waiting.reject(new NamedError("NoRespondersError", "no stream captures this subject (no responders)"))
          return
        }
        let body: AckBody
        try {
          body = message.json<AckBody>()
        } catch (cause) {
          waiting.reject(new NamedError("JetStreamError", `invalid publish ack: ${String(cause)}`))
          return
        }
        if (body.error !== undefined) waiting.reject(new JetStreamApiError(body.error))
        else if (typeof body.seq !== "number") waiting.reject(new NamedError("JetStreamError", "invalid publish ack"))
        else waiting.resolve({ stream: body.stream ?? "", seq: body.seq, duplicate: body.duplicate === true })
      }
    })
    this.sweeper = setInterval(() => this.expire(), Math.max(10, Math.min(250, Math.floor(timeoutMs / 4))))
    this.sweeper.unref()
  }

  /** Publishes and resolves with the stream's ack; rejects when refused, unanswered or past the timeout. */
  publish(subject: string, data: Uint8Array, headers?: MsgHdrs): Promise<PubAck> {
    return new Promise<PubAck>((resolve, reject) => {
      const token = (++this.counter).toString(36)
      this.waiting.set(token, { resolve, reject, deadline: performance.now() + this.timeoutMs })
      try {
        this.nc.publish(
          subject,
          data,
          headers === undefined ? { reply: `${this.inbox}.${token}` } : { reply: `${this.inbox}.${token}`, headers }
        )
      } catch (error) {
        this.waiting.delete(token)
        reject(error instanceof Error ? error : new Error(String(error)))
      }
    })
  }

  /**
   * Fails, as timed out, every publish sent more than `olderThanMs` ago and still unanswered: called when a stream
   * elected a new leader, since a publish that reached the old one will never be answered (an ack takes
   * milliseconds). Those sent less than `olderThanMs` before the call are failed the same way once they are that
   * old (by the sweeper), unless answered meanwhile: they went to the old leader too, or were answered by now.
   * The caller retries; with an idempotency key the retry is stored once.
   */
  failStale(olderThanMs: number): void {
    this.staleBefore = performance.now()
    this.staleGraceMs = olderThanMs
    if (this.waiting.size === 0) return
    const sentBefore = performance.now() - olderThanMs
    let error: Error | undefined
    for (const [token, waiting] of this.waiting) {
      // insertion order is send order
      if (waiting.deadline - this.timeoutMs > sentBefore) return
      this.waiting.delete(token)
      error ??= new NamedError("TimeoutError", "no publish ack before the stream elected a new leader")
      waiting.reject(error)
    }
  }

  close(): void {
    clearInterval(this.sweeper)
    if (!this.nc.isClosed()) this.subscription.unsubscribe()
    const error = new NamedError("ClosedConnectionError", "the NATS transport is shut down")
    for (const waiting of this.waiting.values()) waiting.reject(error)
    this.waiting.clear()
  }

  private expire(): void {
    if (this.waiting.size === 0) return
    const now = performance.now()
    if (this.staleBefore !== undefined && now >= this.staleBefore + this.staleGraceMs) {
      const sentBefore = this.staleBefore
      this.staleBefore = undefined
      let stale: Error | undefined
      for (const [token, waiting] of this.waiting) {
        if (waiting.deadline - this.timeoutMs >= sentBefore) break
        this.waiting.delete(token)
        stale ??= new NamedError("TimeoutError", "no publish ack before the stream elected a new leader")
        waiting.reject(stale)
      }
    }
    let error: Error | undefined
    // Insertion order is deadline order (one timeout for all), so stop at the first one still in time.
    for (const [token, waiting] of this.waiting) {
      if (waiting.deadline > now) return
      this.waiting.delete(token)
      error ??= new NamedError("TimeoutError", `no publish ack within ${this.timeoutMs} ms`)
      waiting.reject(error)
    }
  }
}
