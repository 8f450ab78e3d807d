/**
 * The running server as an Effect service — its address, protocol, counters and metrics, publishing (typed with
 * `publish(protocol)`, or from wire-form data, or as a Promise) and readiness — for application code.
 */
import { Context, Effect } from "effect"
import type { Position } from "../protocol/Position.ts"
import type { AnyProtocol, EventData, EventName, LatestOf } from "../protocol/Protocol.ts"
import type * as Publisher from "../transports/Publisher.ts"
import type { AppendOptions } from "../transports/Transport.ts"
import type { Metrics } from "./http/index.ts"
import type { Stats } from "./Stats.ts"

export interface TidingsServerShape {
  /** The bound port (the attached server's, when attached). */
  readonly port: number
  readonly url: string
  readonly protocol: AnyProtocol
  readonly stats: Stats
  readonly metrics: Metrics.Metrics
  /** Publishes a typed event value of the newest protocol version. Prefer `publish(protocol)` for types. */
  readonly publishUnknown: (
    channel: string,
    event: string,
    data: unknown,
    options?: AppendOptions
  ) => Effect.Effect<Position, Publisher.PublishError>
  /** Same, for data in wire form (e.g. parsed from JSON). */
  readonly publishEncoded: (
    channel: string,
    event: string,
    data: unknown,
    options?: AppendOptions
  ) => Effect.Effect<Position, Publisher.PublishError>
  /** A Promise version of `publishUnknown`, for code outside Effect. */
  readonly publishPromise: (channel: string, event: string, data: unknown, options?: AppendOptions) => Promise<Position>
  readonly connections: () => number
  /** Whether the server accepts connections and its transport is reachable. */
  readonly ready: Effect.Effect<boolean>
}

export class TidingsServer extends Context.Service<TidingsServer, TidingsServerShape>()(
  "tidings/server/TidingsServer"
) {}

/** A typed publish bound to a protocol: `yield* publish(AgentProtocol)("run:1", "status", {...})`. */
export const publish =
  <P extends AnyProtocol>(_protocol: P) =>
  <K extends EventName<LatestOf<P>>>(
    channel: string,
    event: K,
    data: EventData<LatestOf<P>, K>,
    options?: AppendOptions
  ): Effect.Effect<Position, Publisher.PublishError, TidingsServer> =>
    Effect.flatMap(TidingsServer, (server) => server.publishUnknown(channel, event, data, options))
