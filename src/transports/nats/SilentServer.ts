/**
 * Whether the server a connection talks to still answers, and, on a cluster, leaving one that does not.
 *
 * A server cut off by the network (a partition) or frozen (SIGSTOP, a stalled VM) keeps the TCP connection open,
 * and nats.js gives up on it only after two pings go unanswered, two minutes apart by default: until then every
 * request of the node waits on a server that cannot serve it — publishes time out while the rest of the cluster
 * has elected a new stream leader and serves — and after the partition heals, TCP's retransmission backoff adds
 * seconds more. `leaveSilentServers` sends a PING every second and, when the connection knows other servers of a
 * cluster and the PONG has not come within `silentMs`, reconnects; `SilentServers.pick` (nats.js's
 * `reconnectToServer`) keeps the reconnect off the server just left for a while — nats.js would dial it first
 * and wait its connect timeout on it. With one server it does nothing: reconnecting to the same frozen server
 * gains nothing, and nats.js's own pings remain.
 * Following leader changes and resuming the live feed after the reconnect is Nats.ts's, as after any reconnect.
 */
import type { NatsConnection, Server } from "@nats-io/transport-node"
import { Effect, Schedule, type Scope } from "effect"
import type { Link } from "./Link.ts"

/**
 * Whether the server answers a PING within `ms`. Judged after the event loop has read what arrived: a loop blocked
 * longer than `ms` fires the timer before it reads a PONG that came in time.
 */
export const answersWithin = (nc: NatsConnection, ms: number): Promise<boolean> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    nc.flush().then(
      () => true,
      () => false
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => setImmediate(() => resolve(false)), ms)
    })
  ]).finally(() => clearTimeout(timer))
}

/** Servers recently left for their silence, which reconnects avoid while the pool has another. */
export class SilentServers {
  private readonly left = new Map<string, number>()

  constructor(
    private readonly now: () => number,
    /** How long a server left is avoided (a partition may outlast a reconnect or two elsewhere). */
    private readonly avoidForMs = 30_000
  ) {}

  leaving(listen: string): void {
    this.left.set(listen, this.now())
  }

  /** nats.js's `reconnectToServer`: the first server of the pool not left lately; null leaves the choice to it. */
  readonly pick = (pool: ReadonlyArray<Server>): Server | null => {
    if (this.left.size === 0) return null
    const now = this.now()
    for (const [listen, at] of this.left) if (now - at > this.avoidForMs) this.left.delete(listen)
    return pool.find((server) => !this.left.has(server.listen)) ?? null
  }
}

/** The other servers of its cluster the connection knows of (from the server's INFO), 0 without a cluster. */
const otherServers = (nc: NatsConnection): number => Math.max(0, (nc.info?.connect_urls?.length ?? 0) - 1)

/** Forks, for the scope's lifetime, the probe that moves the connection off a cluster server silent for `silentMs`. */
export const leaveSilentServers = (
  nc: NatsConnection,
  link: Link,
  silentMs: number,
  silent: SilentServers,
  report: (message: string, cause: unknown) => void
): Effect.Effect<void, never, Scope.Scope> => {
  const probe = Effect.promise(async () => {
    if (!link.connected || nc.isClosed() || otherServers(nc) === 0) return
    if (await answersWithin(nc, silentMs)) return
    if (!link.connected || nc.isClosed()) return
    report(
      `tidings nats: ${nc.getServer()} did not answer a ping for ${silentMs} ms; reconnecting to another server of the cluster`,
      ""
    )
    silent.leaving(nc.getServer())
    await nc.reconnect().catch(() => {})
  })
  return silentMs > 0 ? Effect.asVoid(Effect.forkScoped(Effect.repeat(probe, Schedule.spaced(1000)))) : Effect.void
}
