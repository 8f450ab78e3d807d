/**
 * Presence in this process's memory (the memory transport's): one node, so no heartbeat can lapse but its own;
 * the same contract as the shared stores, so the server treats every transport alike.
 */
import { Effect } from "effect"
import type { PresenceMember, PresenceRemoval, PresenceStore, StoredMember } from "./PresenceStore.ts"

export const make = (): PresenceStore => {
  const channels = new Map<string, Map<string, StoredMember>>()
  const nodes = new Map<string, number>()
  const alive = (node: string, now: number) => (nodes.get(node) ?? Number.POSITIVE_INFINITY) >= now

  return {
    join: (channel, member, node) =>
      Effect.sync(() => {
        let members = channels.get(channel)
        if (members === undefined) channels.set(channel, (members = new Map()))
        members.set(member.id, { member, node })
      }),
    leave: (channel, memberId) =>
      Effect.sync(() => {
        const members = channels.get(channel)
        const stored = members?.get(memberId)
        if (members === undefined || stored === undefined) return undefined
        members.delete(memberId)
        if (members.size === 0) channels.delete(channel)
        return stored.member
      }),
    list: (channel) =>
      Effect.sync(() => {
        const now = Date.now()
        const members: Array<PresenceMember> = []
        for (const stored of channels.get(channel)?.values() ?? []) {
          if (alive(stored.node, now)) members.push(stored.member)
        }
        return members
      }),
    heartbeat: (node, expiresAt) =>
      Effect.sync(() => {
        const known = nodes.has(node)
        nodes.set(node, expiresAt)
        return !known
      }),
    sweep: (now) =>
      Effect.sync(() => {
        const removed: Array<PresenceRemoval> = []
        for (const [channel, members] of channels) {
          for (const [id, stored] of members) {
            if (alive(stored.node, now)) continue
            members.delete(id)
            removed.push({ channel, member: stored.member })
          }
          if (members.size === 0) channels.delete(channel)
        }
        for (const [node, expiresAt] of nodes) if (expiresAt < now) nodes.delete(node)
        return removed
      })
  }
}
