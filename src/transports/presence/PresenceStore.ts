/**
 * The presence contract: who is subscribed to a channel, kept where every node can see it.
 *
 * A member is one connection's subscription to a channel (a user with two tabs is two members). A node writes
 * its own members and renews one heartbeat for all of them; when a node stops renewing (killed, partitioned),
 * its members count as gone once its heartbeat has expired, and the next `sweep` on any node removes them. Every
 * removal (`leave` or `sweep`) is reported to exactly one caller across all nodes, so each leave is announced
 * once. Implementations: MemoryPresence.ts (one node), redis/Presence.ts, nats/Presence.ts.
 */
import type { Effect } from "effect"
import type { TransportError } from "../TransportError.ts"

/** Who is subscribed: the connection, its user and session, and the token's optional `info` claim. */
export interface PresenceMember {
  /** The connection's id (unique across nodes). */
  readonly id: string
  /** The token's subject; null for an anonymous connection. */
  readonly user: string | null
  readonly session: string
  /** The token's `info` claim, if it had one (a display name, an avatar URL). */
  readonly info?: Readonly<Record<string, unknown>>
}

/** A member removed from a channel: by its own leave, or by a sweep of a node that stopped renewing. */
export interface PresenceRemoval {
  readonly channel: string
  readonly member: PresenceMember
}

export interface PresenceStore {
  /** Adds `member` to `channel`, owned by node `node`. */
  readonly join: (channel: string, member: PresenceMember, node: string) => Effect.Effect<void, TransportError>
  /** Removes a member; answers it when this call removed it, undefined when it was gone already. */
  readonly leave: (channel: string, memberId: string) => Effect.Effect<PresenceMember | undefined, TransportError>
  /** The channel's members whose node's heartbeat has not expired, in no particular order. */
  readonly list: (channel: string) => Effect.Effect<ReadonlyArray<PresenceMember>, TransportError>
  /**
   * Renews node `node`'s heartbeat: its members count as present until `expiresAt` (ms since the epoch). Answers
   * true when the node was not registered (its first heartbeat, or a sweep removed it and its members after its
   * heartbeat lapsed, as when the process was paused): the node then writes its members again.
   */
  readonly heartbeat: (node: string, expiresAt: number) => Effect.Effect<boolean, TransportError>
  /** Removes the members of nodes whose heartbeat expired before `now`; answers what this call removed. */
  readonly sweep: (now: number) => Effect.Effect<ReadonlyArray<PresenceRemoval>, TransportError>
}

/** A member as stored: the member and its node. */
export interface StoredMember {
  readonly member: PresenceMember
  readonly node: string
}

/** Parses a stored member; undefined for anything else (a foreign writer, a truncated value). */
export const parseStored = (text: string): StoredMember | undefined => {
  try {
    const value = JSON.parse(text) as Partial<StoredMember>
    const member = value.member as Partial<PresenceMember> | undefined
    if (typeof value.node !== "string" || member === undefined || typeof member.id !== "string") return undefined
    if (typeof member.session !== "string" || (member.user !== null && typeof member.user !== "string")) {
      return undefined
    }
    return value as StoredMember
  } catch {
    return undefined
  }
}
