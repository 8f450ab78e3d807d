/**
 * The node's NATS connection as the other nats/ modules use it: the clients, the stream names, a fail-fast
 * guard around every request, and the mapping of NATS client errors to `TransportError`.
 *
 * The guard is what keeps a publisher from hanging while the server is away: nats.js buffers requests while it
 * reconnects and only fails them at their timeout, so `call` refuses at once while the connection is down and
 * rejects requests in flight the moment it drops. Connecting, reconnecting and the stream's lifecycle are
 * Nats.ts's; this file only reacts to what it is told (`disconnected`, `reconnected`).
 */
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type StoredMsg
} from "@nats-io/jetstream"
import type { NatsConnection } from "@nats-io/transport-node"
import { TransportError } from "../Transport.ts"
import { channelToken } from "./codec.ts"
import type { Publisher } from "./Publisher.ts"

export interface LinkConfig {
  /** The server URL(s), for messages. */
  readonly url: string
  /** Name of the stream holding the channel logs. */
  readonly stream: string
  /** Subject prefix; channel `c` lives on `<prefix>.<channelToken(c)>`. */
  readonly prefix: string
  /** Bound on every request, in milliseconds. */
  readonly timeoutMs: number
}

export class Link {
  /** Whether the connection is up now. */
  connected = true
  private readonly inFlight = new Set<(error: TransportError) => void>()
  /** Re-creates the stream when it was deleted under us; installed by Nats.ts. */
  recoverStream: () => Promise<void> = () => Promise.resolve()
  /**
   * A subject's last message by direct get, which every replica answers (StreamLookup.lastForAppend); installed by
   * Nats.ts for a replicated stream, with a short timeout: nothing answers a direct get for a missing stream.
   */
  directLast: ((subject: string) => Promise<StoredMsg | null>) | undefined = undefined

  constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    /** Publishes to streams (the append path); see Publisher.ts. */
    readonly publisher: Publisher,
    readonly config: LinkConfig,
    /** Reports a problem the transport handles itself (retries, skips), for the logs. */
    readonly report: (message: string, cause: unknown) => void
  ) {}

  subject(channel: string): string {
    return `${this.config.prefix}.${channelToken(channel)}`
  }

  downError(): TransportError {
    return new TransportError({
      message: `NATS at ${this.config.url} is unreachable; the transport is reconnecting, retry later`,
      retryable: true
    })
  }

  /** Runs one NATS request: refused at once while disconnected, rejected as soon as the connection drops. */
  call<A>(request: () => Promise<A>): Promise<A> {
    if (!this.connected) return Promise.reject(this.downError())
    return new Promise<A>((resolve, reject) => {
      const abort = (error: TransportError) => reject(error)
      this.inFlight.add(abort)
      request().then(
        (value) => {
          this.inFlight.delete(abort)
          resolve(value)
        },
        (error: unknown) => {
          this.inFlight.delete(abort)
          reject(error)
        }
      )
    })
  }

  disconnected(): void {
    this.connected = false
    if (this.inFlight.size === 0) return
    const error = this.downError()
    const aborts = [...this.inFlight]
    this.inFlight.clear()
    for (const abort of aborts) abort(error)
  }

  reconnected(): void {
    this.connected = true
  }

  /** Maps anything a NATS call threw to a TransportError that says what the caller can do. */
  toTransportError(error: unknown): TransportError {
    if (error instanceof TransportError) return error
    const name = error instanceof Error ? error.name : ""
    const message = error instanceof Error ? error.message : String(error)
    const { url, timeoutMs } = this.config
    if (name === "TimeoutError") {
      return new TransportError({
        message: `NATS at ${url} did not answer in time (requests wait up to ${timeoutMs} ms, direct gets less); retry later (an append may still have been stored: retry it with the same idempotency key)`,
        retryable: true
      })
    }
    if (name === "JetStreamNotEnabled" || name === "NoRespondersError") {
      return new TransportError({
        message: `JetStream at ${url} did not answer for stream ${this.config.stream} (no responders); retry later`,
        retryable: true
      })
    }
    if (name === "ClosedConnectionError" || name === "DrainingConnectionError") {
      return new TransportError({ message: `the NATS transport for ${url} is shut down`, retryable: false })
    }
    if (error instanceof JetStreamApiError) {
      return new TransportError({
        message: `JetStream at ${url} refused the operation on stream ${this.config.stream}: ${message}`,
        retryable: error.status >= 500
      })
    }
    if (/max(imum)? payload/i.test(message)) {
      return new TransportError({ message: `NATS at ${url} refused the message: ${message}`, retryable: false })
    }
    return new TransportError({ message: `NATS error at ${url}: ${message}`, retryable: true })
  }
}

export const isWrongLastSequence = (error: unknown): boolean =>
  error instanceof JetStreamApiError &&
  (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
    error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)

export const isStreamNotFound = (error: unknown): boolean =>
  error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound

/** A publish that found no stream for its subject (nats.js reports "no responders" as JetStream not enabled). */
export const isNoStream = (error: unknown): boolean =>
  error instanceof Error && (error.name === "JetStreamNotEnabled" || error.name === "NoRespondersError")
