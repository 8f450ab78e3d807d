/**
 * What an application writes: typed command handlers, and the context each handler gets (who called, a typed
 * publish, and a registry of long-running jobs that outlive the command, such as an agent run).
 * The server is generic over the protocol; handlers see the newest version's types only — older clients'
 * commands were already migrated up.
 */
import type { Effect } from "effect"
import type { Position } from "../protocol/Position.ts"
import type {
  AnyProtocol,
  CommandError,
  CommandName,
  CommandPayload,
  CommandResult,
  EventData,
  EventName,
  LatestOf
} from "../protocol/Protocol.ts"
import type { AppendOptions } from "../transports/Transport.ts"
import type { Jobs } from "./Jobs.ts"
import type { PublishError } from "./Publisher.ts"

/** A typed publish: appends an event to a channel's log and fans it out; returns its position. */
export type Publish<P extends AnyProtocol> = <K extends EventName<LatestOf<P>>>(
  channel: string,
  event: K,
  data: EventData<LatestOf<P>, K>,
  options?: AppendOptions
) => Effect.Effect<Position, PublishError>

export interface CommandContext<P extends AnyProtocol> {
  /** The caller's user id (token subject), or null when anonymous. */
  readonly user: string | null
  readonly session: string
  readonly connection: string
  readonly canRead: (channel: string) => boolean
  readonly publish: Publish<P>
  /** Long-running work keyed by id (an agent run): survives the command, interruptible by `cancel`. */
  readonly jobs: Jobs
}

export type Handler<P extends AnyProtocol, K extends CommandName<LatestOf<P>>, R> = (
  payload: CommandPayload<LatestOf<P>, K>,
  context: CommandContext<P>
) => Effect.Effect<CommandResult<LatestOf<P>, K>, CommandError<LatestOf<P>, K>, R>

export type Handlers<P extends AnyProtocol, R = never> = {
  readonly [K in CommandName<LatestOf<P>>]: Handler<P, K, R>
}
