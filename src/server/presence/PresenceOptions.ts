/**
 * How an application turns presence on: per channel pattern, with the events its protocol announces a join and a
 * leave with, and how long a silent node's members stay.
 */
import type { AnyProtocol, EventOf, LatestOf } from "../../protocol/Protocol.ts"
import type { PresenceMember } from "../../transports/presence/PresenceStore.ts"

export type { PresenceMember } from "../../transports/presence/PresenceStore.ts"

export interface PresenceRule<P extends AnyProtocol> {
  /** Channels whose subscribers are tracked, as a pattern like the tokens' (`run:*`, `room:lobby`). */
  readonly channels: string
  /** The event appended to the channel when a member joins; omit for none. */
  readonly join?: (member: PresenceMember, channel: string) => EventOf<LatestOf<P>>
  /** The event appended when a member leaves (unsubscribes, disconnects, or its node died); omit for none. */
  readonly leave?: (member: PresenceMember, channel: string) => EventOf<LatestOf<P>>
}

export interface PresenceOptions<P extends AnyProtocol> {
  readonly rules: ReadonlyArray<PresenceRule<P>>
  /**
   * A node renews its members every third of this; a node that stops (killed, partitioned, paused) has its members
   * leave at most this long after its last renewal, plus a third for the next sweep. Default 15 s.
   */
  readonly expiryMs?: number
}

export const defaultPresenceExpiryMs = 15_000
