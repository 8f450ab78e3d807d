/**
 * Pages of channel logs pulled through ephemeral consumers, and the consumers kept between the pages of one
 * catch-up.
 *
 * A replay reads a channel page after page, each read starting right after the last entry of the one before.
 * Creating a filtered consumer per page costs round trips and the server's work of positioning it, so the
 * consumer that served a page is kept, keyed by the position it continues from (channel, epoch, offset of its
 * last entry), and already pulls the next page (read-ahead, so that the server sends it while the caller is busy
 * with this one); the next read from exactly that position takes it instead of locating its start again. Kept
 * consumers are bounded (`maxKept`, the oldest is closed first; each holds at most one page read ahead) and
 * closed after `idleMs` unused; if the node dies, the server deletes them after an inactivity threshold. A
 * consumer serves one read at a time (`take` hands it over).
 *
 * Pulls bypass nats.js's consumer iterators (a JsMsg, a full header parse, heartbeat monitoring per message and
 * fetch): a pull is one `CONSUMER.MSG.NEXT` request with `no_wait` — the server sends what it has, up to the
 * batch, and ends a short batch with a 404/408 status — answered on the consumer's own inbox, and its messages
 * are decoded from their bytes (codec.ts `decodeDelivered`). ChannelLog.ts decides what to pull and checks what
 * came back; the connection is Link.ts's.
 */
import { AckPolicy, DeliverPolicy } from "@nats-io/jetstream"
import { createInbox, type Msg, nanos, type Subscription } from "@nats-io/transport-node"
import { decodeDelivered, type Stored } from "./codec.ts"
import type { Link } from "./Link.ts"

export interface PagerOptions {
  /** Consumers kept for the next page of a catch-up (default 64). */
  readonly maxKept?: number
  /** How long a kept consumer waits for its next page before it is closed, in milliseconds (default 5000). */
  readonly idleMs?: number
}

interface Pull {
  readonly want: number
  readonly stored: Array<Stored>
  received: number
  readonly resolve: (stored: Array<Stored>) => void
  readonly reject: (error: Error) => void
  readonly timer: ReturnType<typeof setTimeout>
}

const noop = () => {}

const namedError = (name: string, message: string): Error => {
  const error = new Error(message)
  error.name = name
  return error
}

/**
 * One ephemeral consumer of one channel, with its own inbox; each `pull` continues after the last message it
 * delivered, and one pull runs at a time.
 */
export class Reader {
  /** Set while kept: the key it is kept under and its idle timer. */
  key: string | undefined
  idle: ReturnType<typeof setTimeout> | undefined
  private readonly inbox = createInbox()
  private readonly subscription: Subscription
  private current: Pull | undefined
  private ahead: { readonly count: number; readonly page: Promise<Array<Stored>> } | undefined
  private closed = false

  constructor(
    private readonly pager: Pager,
    private readonly link: Link,
    readonly channel: string,
    readonly name: string
  ) {
    this.subscription = link.nc.subscribe(this.inbox, {
      callback: (error, message) => {
        if (error === null) this.receive(message)
      }
    })
  }

  /**
   * The next `count` messages of the channel (fewer when it has fewer now); foreign messages are left out. The
   * pull started by `readAhead`, if any, must be for the same count.
   */
  pull(count: number): Promise<Array<Stored>> {
    const ahead = this.ahead
    this.ahead = undefined
    if (ahead === undefined) return this.request(count)
    if (ahead.count === count) return ahead.page
    ahead.page.catch(noop)
    return Promise.reject(namedError("PullError", `${count} messages asked, ${ahead.count} read ahead`))
  }

  /** Starts the next pull now, so that its messages are on their way (or here) when `pull` asks for them. */
  readAhead(count: number): void {
    const page = this.request(count)
    page.catch(noop)
    this.ahead = { count, page }
  }

  private request(count: number): Promise<Array<Stored>> {
    return this.link.call(
      () =>
        new Promise<Array<Stored>>((resolve, reject) => {
          const { nc, config } = this.link
          const timer = setTimeout(
            () => this.finish(namedError("TimeoutError", `no pull reply within ${config.timeoutMs} ms`)),
            config.timeoutMs
          )
          this.current = { want: count, stored: [], received: 0, resolve, reject, timer }
          try {
            nc.publish(
              `$JS.API.CONSUMER.MSG.NEXT.${config.stream}.${this.name}`,
              JSON.stringify({ batch: count, no_wait: true }),
              { reply: this.inbox }
            )
          } catch (error) {
            this.finish(error instanceof Error ? error : new Error(String(error)))
          }
        })
    )
  }

  /** Deletes the consumer (not awaited: nothing depends on it, and the server would expire it anyway). */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.pager.release(this)
    this.finish(namedError("ClosedConnectionError", "the consumer was closed"))
    if (this.link.nc.isClosed()) return
    this.subscription.unsubscribe()
    this.link.jsm.consumers.delete(this.link.config.stream, this.name).catch(noop)
  }

  private receive(message: Msg): void {
    const pull = this.current
    if (pull === undefined) return
    const stored = decodeDelivered(this.channel, message)
    if (stored !== undefined) pull.stored.push(stored)
    else {
      const code = message.headers?.code ?? 0
      // 404/408: no (more) messages now, the batch ends short.
      if (code === 404 || code === 408) return this.finish()
      if (code !== 0) {
        const description = message.headers?.description ?? ""
        return this.finish(namedError("PullError", `consumer ${this.name}: ${code} ${description}`))
      }
      // A message this transport did not write: it counts toward the batch, but is left out.
    }
    if (++pull.received >= pull.want) this.finish()
  }

  private finish(error?: Error): void {
    const pull = this.current
    if (pull === undefined) return
    this.current = undefined
    clearTimeout(pull.timer)
    if (error === undefined) pull.resolve(pull.stored)
    else pull.reject(error)
  }
}

export class Pager {
  private readonly kept = new Map<string, Reader>()
  private readonly maxKept: number
  private readonly idleMs: number

  constructor(
    private readonly link: Link,
    options: PagerOptions = {}
  ) {
    this.maxKept = options.maxKept ?? 64
    this.idleMs = options.idleMs ?? 5000
  }

  /** A new consumer of `channel` whose first message is the first of the channel at or after stream sequence `seq`. */
  async open(channel: string, seq: number): Promise<Reader> {
    const { jsm, config } = this.link
    const info = await this.link.call(() =>
      jsm.consumers.add(config.stream, {
        filter_subject: this.link.subject(channel),
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: seq,
        ack_policy: AckPolicy.None,
        mem_storage: true,
        num_replicas: 1,
        inactive_threshold: nanos(Math.max(10_000, 2 * this.idleMs, 2 * config.timeoutMs))
      })
    )
    return new Reader(this, this.link, channel, info.name)
  }

  /** The kept consumer of `channel` whose next message follows `epoch`/`offset`, now the caller's; if any. */
  take(channel: string, epoch: string, offset: number): Reader | undefined {
    const reader = this.kept.get(keyOf(channel, epoch, offset))
    if (reader !== undefined) this.release(reader)
    return reader
  }

  /**
   * Keeps `reader`, whose last message was `epoch`/`offset`, for a read continuing from there, and has it read
   * the next `count` messages ahead.
   */
  keep(reader: Reader, epoch: string, offset: number, count: number): void {
    const key = keyOf(reader.channel, epoch, offset)
    // Another read of the same channel from the same position keeps its own: one is enough.
    this.kept.get(key)?.close()
    if (this.kept.size >= this.maxKept) this.kept.values().next().value?.close()
    reader.key = key
    reader.idle = setTimeout(() => reader.close(), this.idleMs)
    reader.idle.unref()
    this.kept.set(key, reader)
    reader.readAhead(count)
  }

  /** No longer keeps `reader` (taken or closed). */
  release(reader: Reader): void {
    if (reader.key === undefined) return
    if (this.kept.get(reader.key) === reader) this.kept.delete(reader.key)
    clearTimeout(reader.idle)
    reader.key = undefined
  }

  /** Closes every kept consumer (the stream was recreated, or the transport shuts down). */
  closeAll(): void {
    for (const reader of [...this.kept.values()]) reader.close()
  }
}

const keyOf = (channel: string, epoch: string, offset: number): string => `${offset} ${epoch} ${channel}`
