/**
 * The Redis transport's two connections — commands, and the subscriber of live announcements — opened, checked
 * (reachable, Redis 6.2 or later) and closed with the scope; how their losses and returns are logged; and how a
 * failed command becomes a TransportError (retryable unless Redis refused it or answered in an unexpected shape).
 */
import { Effect, type Scope } from "effect"
import { Redis } from "ioredis"
import { TransportError } from "../Transport.ts"

const minRedisVersion = [6, 2] as const
const retryableReply = /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|READONLY|CLUSTERDOWN|NOREPLICAS|OOM)\b/

export const errorMessage = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** A reply of an unexpected shape: a bug or a foreign writer under our key prefix, not a passing outage. */
export class UnexpectedReply extends Error {
  override readonly name = "UnexpectedReply"
}

/** The URL with its password masked, for messages. */
export const describeUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return parsed.toString()
  } catch {
    return url
  }
}

export interface ConnectionsOptions {
  /** The server's URL; with `sentinels`, only its user, password and database are used. */
  readonly url: string
  /** Sentinels to ask for the primary of `sentinelName` (ioredis's sentinel support), instead of `url`'s host. */
  readonly sentinels?: ReadonlyArray<{ readonly host: string; readonly port: number }>
  readonly sentinelName?: string
  readonly commandTimeoutMs: number
  readonly reconnectMaxDelayMs: number
  readonly log: (level: "warn" | "info", message: string) => void
  /** Called as the connections close (before they disconnect). */
  readonly onClose: () => void
}

export interface Connections {
  readonly client: Redis
  readonly subscriber: Redis
  readonly safeUrl: string
  /** The failure of `operation` as a TransportError. */
  readonly toTransportError: (operation: string) => (cause: unknown) => TransportError
}

export const open = (options: ConnectionsOptions): Effect.Effect<Connections, TransportError, Scope.Scope> =>
  Effect.gen(function* () {
    const { url, commandTimeoutMs, reconnectMaxDelayMs, log, sentinels } = options
    const sentinelName = options.sentinelName ?? "mymaster"
    const safeUrl =
      sentinels === undefined
        ? describeUrl(url)
        : `the primary of ${sentinelName} (sentinels ${sentinels.map((s) => `${s.host}:${s.port}`).join(",")})`
    /** With sentinels: the URL's credentials and database, the address asked from the sentinels. */
    const sentinelOptions = () => {
      const parsed = url === "" ? undefined : new URL(url)
      const db = parsed === undefined ? 0 : Number(parsed.pathname.slice(1) || "0")
      return {
        sentinels: sentinels!.map((s) => ({ host: s.host, port: s.port })),
        name: sentinelName,
        role: "master" as const,
        // hear +switch-master from the sentinels at once instead of waiting for the old primary's socket to fail
        failoverDetector: true,
        sentinelRetryStrategy: (attempt: number) => Math.min(100 * attempt, reconnectMaxDelayMs),
        ...(parsed?.username ? { username: decodeURIComponent(parsed.username) } : {}),
        ...(parsed?.password ? { password: decodeURIComponent(parsed.password) } : {}),
        ...(Number.isInteger(db) ? { db } : {})
      }
    }
    const connectionOptions = (name: string) => ({
      lazyConnect: true,
      connectionName: name,
      // Fail fast instead of queueing while disconnected, and never re-send a command after a dropped connection
      // (an append might run twice): the caller gets a retryable TransportError and decides.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // LiveFeed subscribes again itself, then checks for missed entries: the order matters.
      autoResubscribe: false,
      // Commands issued in one tick go out in one write: at many appends in flight, socket writes were the
      // largest cost of the whole append path.
      enableAutoPipelining: true,
      commandTimeout: commandTimeoutMs,
      connectTimeout: Math.max(commandTimeoutMs, 1000),
      retryStrategy: (attempt: number) =>
        Math.min(50 * 2 ** Math.min(attempt, 10), reconnectMaxDelayMs) + Math.random() * 50
    })

    let started = false
    let closing = false
    const watch = (redis: Redis, role: string) => {
      const state = { lost: false, lastError: undefined as unknown }
      const markLost = (reason: string) => {
        if (!started || closing || state.lost) return
        state.lost = true
        log("warn", `tidings redis transport: ${role} connection to ${safeUrl} lost (${reason}); reconnecting`)
      }
      redis.on("error", (error: unknown) => {
        state.lastError = error
        markLost(errorMessage(error))
      })
      redis.on("close", () => markLost("connection closed"))
      redis.on("ready", () => {
        if (!state.lost) return
        state.lost = false
        log("info", `tidings redis transport: ${role} connection to ${safeUrl} restored`)
      })
      return state
    }

    const [client, subscriber] = yield* Effect.acquireRelease(
      Effect.sync(() =>
        sentinels === undefined
          ? [new Redis(url, connectionOptions("tidings")), new Redis(url, connectionOptions("tidings-live"))]
          : [
              new Redis({ ...connectionOptions("tidings"), ...sentinelOptions() }),
              new Redis({ ...connectionOptions("tidings-live"), ...sentinelOptions() })
            ]
      ),
      (connections) =>
        Effect.sync(() => {
          closing = true
          options.onClose()
          for (const connection of connections) connection.disconnect()
        })
    )
    const clientState = watch(client, "command")
    const subscriberState = watch(subscriber, "subscriber")

    const unreachable = (cause: unknown) =>
      new TransportError({
        message:
          `cannot reach Redis at ${safeUrl}: ${errorMessage(cause)}. ` +
          (sentinels === undefined
            ? "Check the URL (REDIS_URL) and that Redis is running and reachable from this node."
            : "Check REDIS_SENTINELS and REDIS_SENTINEL_NAME, and that the sentinels know a primary by that name."),
        retryable: true
      })

    yield* Effect.tryPromise({
      try: () => Promise.all([client.connect(), subscriber.connect()]),
      catch: (cause) => unreachable(clientState.lastError ?? subscriberState.lastError ?? cause)
    })
    const version = yield* Effect.tryPromise({
      try: () => client.info("server"),
      catch: unreachable
    }).pipe(Effect.map((info) => /redis_version:(\d+)\.(\d+)/.exec(info)))
    if (
      version === null ||
      Number(version[1]) * 1000 + Number(version[2]) < minRedisVersion[0] * 1000 + minRedisVersion[1]
    ) {
      return yield* new TransportError({
        message: `Redis at ${safeUrl} is version ${version === null ? "unknown" : `${version[1]}.${version[2]}`}; the tidings Redis transport needs ${minRedisVersion.join(".")} or later`,
        retryable: false
      })
    }
    // from here on, a lost connection is worth a line in the log
    started = true

    const toTransportError =
      (operation: string) =>
      (cause: unknown): TransportError => {
        if (cause instanceof TransportError) return cause
        const message = errorMessage(cause)
        if (cause instanceof UnexpectedReply) {
          return new TransportError({ message: `Redis ${operation} on ${safeUrl}: ${message}`, retryable: false })
        }
        if (cause instanceof Error && cause.name === "ReplyError" && !retryableReply.test(message)) {
          return new TransportError({
            message: `Redis ${operation} on ${safeUrl} refused: ${message}`,
            retryable: false
          })
        }
        const reason = client.status === "ready" ? message : `Redis is unreachable (connection ${client.status})`
        return new TransportError({
          message: `Redis ${operation} on ${safeUrl} failed: ${reason}; retry once Redis is back`,
          retryable: true
        })
      }
    return { client, subscriber, safeUrl, toTransportError }
  })
