/**
 * What an application writes: typed command handlers, and the context each handler gets (who called, a typed
 * publish). Work that outlives a command (an agent run) is a run (src/runs), bound to commands by
 * RunCommands.ts. The server is generic over the protocol; handlers see the newest version's types only — older
 * clients' commands were already migrated up.
 */
import type { Effect } from "effect"
import type { CommandUnavailable } from "../protocol/CommandUnavailable.ts"
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
import type { PublishError } from "../transports/Publisher.ts"
import type { AppendOptions } from "../transports/Transport.ts"

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
}

/**
 * A command's handler. Besides the command's typed error it may fail with CommandUnavailable (something it needs
 * is down for now), which the client gets as an `unavailable` error with a retry delay.
 */
export type Handler<P extends AnyProtocol, K extends CommandName<LatestOf<P>>, R> = (
  payload: CommandPayload<LatestOf<P>, K>,
  context: CommandContext<P>
) => Effect.Effect<CommandResult<LatestOf<P>, K>, CommandError<LatestOf<P>, K> | CommandUnavailable, R>

export type Handlers<P extends AnyProtocol, R = never> = {
  readonly [K in CommandName<LatestOf<P>>]: Handler<P, K, R>
}
