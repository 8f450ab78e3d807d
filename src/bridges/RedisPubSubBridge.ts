/**
 * A bridge from Redis pub/sub: PSUBSCRIBEs the configured patterns and turns each message into an event of a
 * tidings channel (BridgeConfig.ts says how), through Ingest.ts. Bad messages go to a Redis stream (XADD, capped at
 * 10,000 entries) with the reason and the source channel, readable with `redis-cli XRANGE`.
 *
 * What Redis pub/sub cannot promise: a message published while the bridge is disconnected or down is gone (pub/sub
 * keeps nothing), and a message has no id, so one published twice is appended twice unless the mapping names an id
 * field. Redis pub/sub has no flow control: messages beyond `maxInFlight` waiting for the transport are
 * dead-lettered rather than held without bound.
 */
import { Effect, type Scope } from "effect"
import { Redis } from "ioredis"
import type { RedisPubSubBridge as Spec } from "./BridgeConfig.ts"
import { BridgeStats } from "./BridgeStats.ts"
import { Ingest, type IngestEnv } from "./Ingest.ts"
import { globCaptures, map } from "./Mapping.ts"

export interface RedisPubSubOptions {
  /** Messages waiting for the transport at most (default 50,000). */
  readonly maxInFlight?: number
  /** How long a failed append is retried before the message is dead-lettered (default 30 s). */
  readonly appendRetryMs?: number
}

export const make = (
  spec: Spec,
  env: Omit<IngestEnv, "stats" | "deadLetter" | "appendRetryMs">,
  options: RedisPubSubOptions = {}
): Effect.Effect<BridgeStats, never, Scope.Scope> =>
  Effect.gen(function* () {
    const stats = new BridgeStats(spec.name)
    const maxInFlight = options.maxInFlight ?? 50_000
    const connectionOptions = (role: string) => ({
      lazyConnect: true,
      connectionName: `tidings-bridge-${spec.name}-${role}`,
      maxRetriesPerRequest: 1,
      autoResubscribe: false,
      retryStrategy: (attempt: number) => Math.min(50 * 2 ** Math.min(attempt, 8), 5000)
    })
    const subscriber = new Redis(spec.url, connectionOptions("subscriber"))
    const commands = new Redis(spec.url, connectionOptions("commands"))
    const deadLetters = spec.deadLetters ?? `tidings:dead-letters:${spec.name}`
    const ingest = new Ingest({
      ...env,
      stats,
      appendRetryMs: options.appendRetryMs ?? 30_000,
      deadLetter: (text, reason, origin) =>
        Effect.promise(() =>
          commands.xadd(deadLetters, "MAXLEN", "~", "10000", "*", "reason", reason, "source", origin, "message", text)
        )
    })
    let inFlight = 0

    // subscribed again on every (re)connect: a message published before that is gone
    subscriber.on("ready", () => {
      subscriber.psubscribe(...spec.patterns).then(
        () => {
          stats.connected = true
          stats.reason = undefined
        },
        () => {}
      )
    })
    subscriber.on("close", () => {
      stats.connected = false
      stats.reason = `redis at ${spec.url} disconnected`
    })
    subscriber.on("error", () => {})
    commands.on("error", () => {})
    subscriber.on("pmessage", (pattern: string, channel: string, text: string) => {
      if (inFlight >= maxInFlight) {
        const reason = `over ${maxInFlight} messages waiting for the transport`
        void ingest.ingest(text, { ok: false, reason }, channel)
        return
      }
      inFlight++
      const mapped = map(spec, text, { captures: globCaptures(pattern, channel) ?? [] })
      void ingest.ingest(text, mapped, channel).finally(() => {
        inFlight--
      })
    })

    yield* Effect.acquireRelease(
      Effect.promise(async () => {
        await Promise.all([subscriber.connect(), commands.connect()]).catch(() => {})
      }),
      () =>
        Effect.promise(async () => {
          subscriber.disconnect()
          commands.disconnect()
        })
    )
    return stats
  })
