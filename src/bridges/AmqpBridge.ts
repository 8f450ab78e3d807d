/**
 * A bridge from RabbitMQ (AMQP 0-9-1, amqplib): owns one connection to the broker, the topology it reads (the
 * exchange and the bridge's queue, both durable, bound with `bindings`, and the durable dead-letter queue), one
 * consumer with manual acknowledgements and `prefetch` messages in flight (default 1,000), and reconnection. Each
 * message is mapped (Mapping.ts: `{routingKey}` in templates, the AMQP `messageId` property as the idempotency key
 * unless the mapping names an id field) and appended through Ingest.ts, which keeps each channel's messages in
 * delivery order.
 *
 * A message is acknowledged only once it is in the log (appended, or answered as a duplicate by its idempotency
 * key) or dead-lettered; a failed append is retried for as long as the message is unacknowledged, so a channel's
 * later messages wait behind it and order holds. A bad message (not JSON, no channel, not a valid event) is
 * published — its original bytes and properties, with headers `x-tidings-reason`, `x-tidings-routing-key`,
 * `x-tidings-exchange` and `x-tidings-bridge` — to the dead-letter queue (`deadLetters`, default
 * `<queue>.dead-letters`) with a publisher confirm, and only then acknowledged. Acknowledgements are sent once per
 * turn of the event loop: the run of ready messages from the oldest unacknowledged one as one `multiple` ack, any
 * other ready one on its own (so it frees its place in the prefetch window at once).
 *
 * When the connection drops (or a channel is closed by the broker), the bridge reconnects with backoff (100 ms
 * doubling to 5 s) and declares everything again; the broker redelivers every unacknowledged message, and the
 * idempotency key turns those already appended into duplicates. Before consuming on a new connection the bridge
 * waits for the messages of the old one still on their way to the log, so at most `prefetch` messages are ever held.
 * `stats.connected` is true while it consumes; `stats.reason` says why not.
 *
 * What it cannot promise: a message without a `messageId` property (and no id field in the mapping) has no
 * idempotency key, so one redelivered after a crash between append and ack is appended twice; and a message's
 * idempotency key is remembered for the transport's window (default 2 min), so a redelivery later than that
 * appends again.
 */
import { setMaxListeners } from "node:events"
import { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, connect } from "amqplib"
import { Effect, Schedule, type Scope } from "effect"
import type { AmqpBridge as Spec } from "./BridgeConfig.ts"
import { BridgeStats } from "./BridgeStats.ts"
import { Ingest, type IngestEnv } from "./Ingest.ts"
import { map } from "./Mapping.ts"

type Env = Omit<IngestEnv, "stats" | "deadLetter" | "appendRetryMs">

/** One connection and its channels; `open` turns false for good when any of them closes. */
interface Session {
  readonly connection: ChannelModel
  readonly consume: Channel
  readonly confirm: ConfirmChannel
  open: boolean
  /** Its deliveries not yet acknowledged, in delivery order (from `head` on). */
  unacked: Array<Delivery>
  head: number
  /** Deliveries ready to be acknowledged and not yet. */
  ready: number
  flushScheduled: boolean
}

/** A message on its way to the log, from the session it was delivered on (and must be acknowledged on). */
interface Delivery {
  readonly session: Session
  readonly message: ConsumeMessage
  /** Set once its dead letter was confirmed by the broker. */
  deadLettered: boolean
  state: "waiting" | "ready" | "acked"
}

/** How long closing waits for messages on their way to the log (the rest are redelivered). */
const CLOSE_GRACE_MS = 5000

/** The URL without its password, for logs and readiness. */
export const safeUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return parsed.toString()
  } catch {
    return "(an invalid AMQP URL)"
  }
}

/** The URL with a heartbeat of 10 s unless it names one (a silent broker is noticed in about 20 s). */
export const withHeartbeat = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (!parsed.searchParams.has("heartbeat")) parsed.searchParams.set("heartbeat", "10")
    return parsed.toString()
  } catch {
    return url
  }
}

export const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error))

class AmqpConsumer {
  private readonly deadLetterQueue: string
  private readonly prefetch: number
  private readonly where: string
  private readonly ingest: Ingest
  private readonly deliveries = new Map<string, Delivery>()
  private nextToken = 0
  /** Messages on their way to the log, from every session. */
  private inFlight = 0
  private readonly drainWaiters = new Set<() => void>()
  private session: Session | undefined
  /** The connection being opened or open, so that `close` can end it at any step. */
  private connection: ChannelModel | undefined
  private consumerTag: string | undefined
  private closed = false
  private wake: (() => void) | undefined
  private loop: Promise<void> = Promise.resolve()
  /** Aborted once closing has waited long enough for the appends on their way. */
  private readonly stopping = new AbortController()

  constructor(
    private readonly spec: Spec,
    private readonly env: Env,
    readonly stats: BridgeStats,
    run: <A, E>(effect: Effect.Effect<A, E>, options: Effect.RunOptions) => Promise<A>
  ) {
    this.deadLetterQueue = spec.deadLetters ?? `${spec.queue}.dead-letters`
    this.prefetch = spec.prefetch ?? 1000
    this.where = safeUrl(spec.url)
    // Appends still retrying when the bridge closes are interrupted (their messages are redelivered): each runs
    // with the bridge's services and this signal.
    setMaxListeners(Number.POSITIVE_INFINITY, this.stopping.signal)
    this.ingest = new Ingest({
      ...env,
      stats,
      appendRetryMs: Number.POSITIVE_INFINITY,
      runPromise: (effect) => run(effect, { signal: this.stopping.signal }),
      deadLetter: (_text, reason, token) => this.deadLetter(token, reason)
    })
  }

  start(): void {
    this.loop = this.run()
  }

  private log(level: "info" | "warning", message: string): void {
    const text = `tidings bridge ${this.spec.name}: ${message}`
    void this.env.runPromise(level === "info" ? Effect.logInfo(text) : Effect.logWarning(text)).catch(() => undefined)
  }

  private down(reason: string): void {
    this.stats.connected = false
    this.stats.reason = reason
  }

  private async run(): Promise<void> {
    let attempt = 0
    while (!this.closed) {
      let ended: Promise<string>
      try {
        ;({ ended } = await this.open())
        attempt = 0
      } catch (error) {
        if (this.closed) break
        const reason = `amqp at ${this.where}: ${errorText(error)}`
        if (attempt === 0) this.log("warning", `cannot consume (${reason}); retrying`)
        this.down(reason)
        await this.pause(Math.min(100 * 2 ** attempt++, 5000))
        continue
      }
      const why = await ended
      if (this.closed) break
      this.log("warning", `lost the connection to ${this.where} (${why}); reconnecting`)
      this.down(`amqp at ${this.where} disconnected: ${why}`)
      await this.pause(100)
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms * (0.8 + Math.random() * 0.4))
      function done() {
        clearTimeout(timer)
        resolve()
      }
      this.wake = done
    })
  }

  /** Connects, declares, and consumes; `ended` says why the session ended, once it has. */
  private async open(): Promise<{ readonly ended: Promise<string> }> {
    const connection = await connect(withHeartbeat(this.spec.url), {
      timeout: 10_000,
      noDelay: true,
      clientProperties: { connection_name: `tidings-bridge-${this.spec.name}` }
    })
    this.connection = connection
    // why the session ended: the connection's error (the broker closed it: shutting down, forced), else a
    // channel's (the broker closed it: a deleted queue, a refused publish), else the connection just closed
    let connectionError = ""
    let channelError = ""
    const ended = new Promise<string>((resolve) =>
      connection.once("close", (error?: Error) =>
        resolve(
          connectionError ||
            (error ? errorText(error) : "") ||
            (channelError === "" ? "connection closed" : `a channel closed: ${channelError}`)
        )
      )
    )
    // 'close' follows every 'error'
    connection.on("error", (error: Error) => {
      connectionError = errorText(error)
    })
    connection.on("blocked", (reason: string) => this.log("warning", `the broker blocked the connection: ${reason}`))
    try {
      if (this.closed) throw new Error("closed")
      const setup = await connection.createChannel()
      setup.on("error", () => {})
      await setup.assertExchange(this.spec.exchange, this.spec.exchangeType ?? "topic", { durable: true })
      await setup.assertQueue(this.spec.queue, { durable: true })
      for (const binding of this.spec.bindings) await setup.bindQueue(this.spec.queue, this.spec.exchange, binding)
      await setup.assertQueue(this.deadLetterQueue, { durable: true })
      await setup.close()

      const confirm = await connection.createConfirmChannel()
      const consume = await connection.createChannel()
      const session: Session = {
        connection,
        consume,
        confirm,
        open: true,
        unacked: [],
        head: 0,
        ready: 0,
        flushScheduled: false
      }
      const end = () => {
        if (!session.open) return
        session.open = false
        // a channel closed by the broker: start over on a new connection
        void connection.close().catch(() => undefined)
      }
      for (const channel of [consume, confirm]) {
        channel.on("error", (error: Error) => {
          channelError = errorText(error)
        })
        channel.once("close", end)
      }
      connection.once("close", end)

      // The messages of an earlier connection still on their way to the log finish first (they are redelivered
      // meanwhile, and answered as duplicates once they arrive): at most `prefetch` messages are held at once.
      if (this.inFlight > 0) {
        this.down(`waiting for ${this.inFlight} messages of an earlier connection to reach the log`)
        await this.drained()
      }
      if (this.closed || !session.open) throw new Error(this.closed ? "closed" : channelError || "connection closed")
      await consume.prefetch(this.prefetch)
      const { consumerTag } = await consume.consume(this.spec.queue, (message) => this.deliver(session, message), {
        noAck: false
      })
      this.consumerTag = consumerTag
      this.session = session
      this.stats.connected = true
      this.stats.reason = undefined
      this.log("info", `consuming ${this.spec.queue} at ${this.where}`)
      return { ended }
    } catch (error) {
      await connection.close().catch(() => undefined)
      throw error
    }
  }

  private drained(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve()
    return new Promise((resolve) => this.drainWaiters.add(resolve))
  }

  private deliver(session: Session, message: ConsumeMessage | null): void {
    if (message === null) {
      // the broker cancelled the consumer (the queue was deleted): declare it again on a new connection
      if (session.open) {
        session.open = false
        void session.connection.close().catch(() => undefined)
      }
      return
    }
    const text = message.content.toString("utf8")
    const mapped = map(this.spec, text, {
      captures: [],
      names: { routingKey: message.fields.routingKey },
      // an empty messageId is none: as an idempotency key it would make every such message a duplicate of the first
      brokerId: message.properties.messageId || undefined
    })
    const token = String(this.nextToken++)
    const delivery: Delivery = { session, message, deadLettered: false, state: "waiting" }
    session.unacked.push(delivery)
    this.deliveries.set(token, delivery)
    this.inFlight++
    this.ingest
      .ingest(text, mapped, token)
      .then(
        (outcome) => {
          // a dead letter that was not confirmed: the message is redelivered on the next connection
          if (outcome === "dead_lettered" && !delivery.deadLettered) return
          delivery.state = "ready"
          session.ready++
          this.scheduleFlush(session)
        },
        () => {
          // interrupted while closing: redelivered
        }
      )
      .finally(() => this.settle(token))
  }

  private scheduleFlush(session: Session): void {
    if (session.flushScheduled) return
    session.flushScheduled = true
    setImmediate(() => {
      session.flushScheduled = false
      this.flush(session)
    })
  }

  /**
   * Acknowledges what became ready since the last flush (one flush per turn of the event loop): the run of ready
   * deliveries from the oldest unacknowledged one with one `multiple` ack, the others (behind an older message still
   * on its way) one by one, so that they free their place in the prefetch window at once.
   */
  private flush(session: Session): void {
    if (!session.open || session.ready === 0) return
    const { unacked } = session
    let last: Delivery | undefined
    while (session.head < unacked.length && unacked[session.head]!.state !== "waiting") {
      const delivery = unacked[session.head++]!
      if (delivery.state === "ready") {
        last = delivery
        delivery.state = "acked"
        session.ready--
      }
    }
    try {
      if (last !== undefined) session.consume.ack(last.message, true)
      for (let i = session.head; i < unacked.length && session.ready > 0; i++) {
        const delivery = unacked[i]!
        if (delivery.state !== "ready") continue
        session.consume.ack(delivery.message)
        delivery.state = "acked"
        session.ready--
      }
    } catch {
      // the channel closed meanwhile: what it did not acknowledge is redelivered
    }
    if (session.head > 1024 && session.head * 2 > unacked.length) {
      session.unacked = unacked.slice(session.head)
      session.head = 0
    }
  }

  private settle(token: string): void {
    if (!this.deliveries.delete(token)) return
    this.inFlight--
    if (this.inFlight === 0) {
      for (const resolve of this.drainWaiters) resolve()
      this.drainWaiters.clear()
    }
  }

  /** Publishes a bad message to the dead-letter queue, retried while its delivery can still be acknowledged. */
  private deadLetter(token: string, reason: string): Effect.Effect<void, unknown> {
    const delivery = this.deliveries.get(token)
    if (delivery === undefined) return Effect.fail(new Error("the message is no longer held"))
    const { session, message } = delivery
    const publish = Effect.callback<void, Error>((resume) => {
      if (!session.open) {
        resume(Effect.fail(new Error("the connection closed first; the broker redelivers the message")))
        return
      }
      const { properties, fields } = message
      try {
        session.confirm.sendToQueue(
          this.deadLetterQueue,
          message.content,
          {
            persistent: true,
            contentType: properties.contentType,
            contentEncoding: properties.contentEncoding,
            messageId: properties.messageId,
            correlationId: properties.correlationId,
            timestamp: properties.timestamp,
            type: properties.type,
            appId: properties.appId,
            headers: {
              ...properties.headers,
              "x-tidings-reason": reason,
              "x-tidings-routing-key": fields.routingKey,
              "x-tidings-exchange": fields.exchange,
              "x-tidings-bridge": this.spec.name
            }
          },
          (error: unknown) =>
            resume(error ? Effect.fail(new Error(`the broker refused it: ${errorText(error)}`)) : Effect.void)
        )
      } catch (error) {
        resume(Effect.fail(new Error(errorText(error))))
      }
    })
    return publish.pipe(
      Effect.retry({
        schedule: Schedule.min([Schedule.exponential("50 millis", 2), Schedule.spaced("2 seconds")]),
        while: () => session.open && !this.closed
      }),
      Effect.tap(() =>
        Effect.sync(() => {
          delivery.deadLettered = true
        })
      )
    )
  }

  async close(): Promise<void> {
    this.closed = true
    this.wake?.()
    const session = this.session
    const within = <A>(promise: Promise<A>) =>
      Promise.race([promise, new Promise<void>((resolve) => setTimeout(resolve, CLOSE_GRACE_MS))])
    // no new messages; those on their way to the log get a moment to arrive and be acknowledged
    if (session?.open && this.consumerTag !== undefined) {
      await within(session.consume.cancel(this.consumerTag).catch(() => undefined))
    }
    await within(this.drained())
    if (session !== undefined) this.flush(session)
    this.stopping.abort()
    await this.connection?.close().catch(() => undefined)
    await within(this.loop)
    this.down("closed")
  }
}

export const make = (spec: Spec, env: Env): Effect.Effect<BridgeStats, never, Scope.Scope> =>
  Effect.gen(function* () {
    const stats = new BridgeStats(spec.name)
    const consumer = new AmqpConsumer(spec, env, stats, Effect.runPromiseWith(yield* Effect.context<never>()))
    yield* Effect.acquireRelease(
      Effect.sync(() => consumer.start()),
      () => Effect.promise(() => consumer.close())
    )
    return stats
  })
