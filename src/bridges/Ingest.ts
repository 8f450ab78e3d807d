/**
 * The part every bridge shares: a mapped message is decoded against the protocol's newest version and appended
 * to its channel with the message id as idempotency key, so a message delivered again (a broker redelivery after
 * a crash) is answered from the log instead of appended twice. Messages for one channel are appended one after
 * another, in the order they arrived; different channels go concurrently. A message that cannot be mapped or is
 * not a valid event is dead-lettered with the reason (never appended, never a crash); a failed append (the
 * transport is down) is retried with backoff for `appendRetryMs`, holding back the channel's later messages.
 */
import { Duration, Effect, Result, Schedule } from "effect"
import type { ProtocolCodec } from "../protocol/ProtocolCodec.ts"
import type { Publisher } from "../transports/Publisher.ts"
import type { TransportError } from "../transports/Transport.ts"
import type { BridgeStats } from "./BridgeStats.ts"
import type { MappingResult } from "./Mapping.ts"

/** Where a bad message goes, with the reason; best effort (a failure is logged, the message is still consumed). */
export type DeadLetter = (text: string, reason: string, origin: string) => Effect.Effect<void, unknown>

export interface IngestEnv {
  readonly codec: ProtocolCodec
  readonly publisher: Publisher
  readonly stats: BridgeStats
  readonly deadLetter: DeadLetter
  /**
   * How long a failed append (the transport is down) is retried, with backoff, before the message is
   * dead-lettered; the channel's later messages wait meanwhile, so their order holds. Infinity: until it succeeds.
   */
  readonly appendRetryMs: number
  /** Runs an effect with the bridge's services (its logger). */
  readonly runPromise: <A, E>(effect: Effect.Effect<A, E>) => Promise<A>
}

export type IngestOutcome = "appended" | "duplicate" | "dead_lettered"

export class Ingest {
  /** The tail of each channel's queue of appends. */
  private readonly tails = new Map<string, Promise<unknown>>()

  /** Backoff for failed appends, built once: 50 ms doubling, at most 2 s apart, for `appendRetryMs`. */
  private readonly retrySchedule

  constructor(private readonly env: IngestEnv) {
    this.retrySchedule = Schedule.min([Schedule.exponential("50 millis", 2), Schedule.spaced("2 seconds")]).pipe(
      Schedule.upTo({ duration: Duration.millis(env.appendRetryMs) })
    )
  }

  /**
   * Appends one message (after the channel's earlier ones); resolves when it is in the log or dead-lettered.
   */
  ingest(text: string, mapped: MappingResult, origin = ""): Promise<IngestOutcome> {
    if (!mapped.ok) return this.dead(text, mapped.reason, origin)
    const { channel, event, data, id } = mapped.value
    const decoded = this.env.codec.decodeEvent(event, data)
    if (Result.isFailure(decoded)) {
      const at = decoded.failure.path.length > 0 ? ` at ${decoded.failure.path.join(".")}` : ""
      return this.dead(text, `not a valid ${event} event${at}: ${decoded.failure.message}`, origin)
    }
    const previous = this.tails.get(channel) ?? Promise.resolve()
    const append = previous.then(
      () => this.append(channel, event, decoded.success, id, text, origin),
      () => this.append(channel, event, decoded.success, id, text, origin)
    )
    this.tails.set(channel, append)
    void append.then(
      () => this.forget(channel, append),
      () => this.forget(channel, append)
    )
    return append
  }

  private forget(channel: string, tail: Promise<unknown>): void {
    if (this.tails.get(channel) === tail) this.tails.delete(channel)
  }

  private append(channel: string, event: string, data: unknown, id: string | undefined, text: string, origin: string) {
    return this.env.runPromise(
      this.env.publisher.append(channel, event, data, id === undefined ? undefined : { idempotencyKey: id }).pipe(
        Effect.map((entry): IngestOutcome => {
          const outcome = entry.duplicate === true ? "duplicate" : "appended"
          this.env.stats.count(outcome)
          return outcome
        }),
        Effect.catchTag("InvalidEvent", (error) =>
          Effect.promise(() => this.dead(text, `not a valid ${event} event: ${error.message}`, origin))
        ),
        Effect.tapError(() => Effect.sync(() => this.env.stats.count("append_failed"))),
        Effect.retry({
          // a refusal that will not pass on retry (Redis refused the command) is dead-lettered at once
          while: (error: TransportError) => error.retryable,
          schedule: this.retrySchedule
        }),
        Effect.catch((error: TransportError) =>
          Effect.promise(() =>
            this.dead(text, `the transport did not take it for ${this.env.appendRetryMs} ms: ${error.message}`, origin)
          )
        )
      )
    )
  }

  private dead(text: string, reason: string, origin: string): Promise<IngestOutcome> {
    return this.env.runPromise(
      Effect.logWarning(`tidings bridge ${this.env.stats.name}: dead-lettered a message: ${reason}`).pipe(
        Effect.andThen(this.env.deadLetter(text, reason, origin)),
        Effect.tap(() => Effect.sync(() => this.env.stats.count("dead_lettered"))),
        // counted apart: a bridge that acknowledges its broker must not do so for this message (AmqpBridge.ts)
        Effect.catchCause((cause) =>
          Effect.sync(() => this.env.stats.count("dead_letter_failed")).pipe(
            Effect.andThen(
              Effect.logError(`tidings bridge ${this.env.stats.name}: could not dead-letter a message`, cause)
            )
          )
        ),
        Effect.as("dead_lettered" as const)
      )
    )
  }
}
