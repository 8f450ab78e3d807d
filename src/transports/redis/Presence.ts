/**
 * Presence in Redis (PresenceStore.ts): a hash per channel (`<prefix>{<channel>}:presence`, member id → member and
 * node as JSON), a set per node of the channels it has members in (`<prefix>presence:node:<node>`), and one
 * sorted set of node heartbeats scored by expiry (`<prefix>presence:nodes`). Removal is HDEL, whose answer (1 or 0)
 * tells exactly one caller that it removed the member. A sweep finds expired nodes, removes their members
 * channel by channel, then forgets the node. Members of a node that left no heartbeat yet count as present.
 */

import { Effect } from "effect"
import type { Redis } from "ioredis"
import {
  type PresenceMember,
  type PresenceRemoval,
  type PresenceStore,
  parseStored,
  type StoredMember
} from "../presence/PresenceStore.ts"
import type { TransportError } from "../Transport.ts"
import { escapeName } from "./codec.ts"

export const make = (
  client: Redis,
  keyPrefix: string,
  toTransportError: (operation: string) => (cause: unknown) => TransportError
): PresenceStore => {
  const channelKey = (channel: string) => `${keyPrefix}{${escapeName(channel)}}:presence`
  const nodeKey = (node: string) => `${keyPrefix}presence:node:${node}`
  const nodesKey = `${keyPrefix}presence:nodes`
  const run = <A>(operation: string, attempt: () => Promise<A>): Effect.Effect<A, TransportError> =>
    Effect.tryPromise({ try: attempt, catch: toTransportError(operation) })

  const storedMembers = (hash: Record<string, string>): Array<StoredMember> => {
    const members: Array<StoredMember> = []
    for (const text of Object.values(hash)) {
      const stored = parseStored(text)
      if (stored) members.push(stored)
    }
    return members
  }

  return {
    join: (channel, member, node) =>
      run("presence join", async () => {
        await client
          .multi()
          .hset(channelKey(channel), member.id, JSON.stringify({ member, node }))
          .sadd(nodeKey(node), channel)
          .exec()
      }),
    leave: (channel, memberId) =>
      run("presence leave", async () => {
        const key = channelKey(channel)
        const text = await client.hget(key, memberId)
        if (text === null) return undefined
        const removed = await client.hdel(key, memberId)
        return removed === 1 ? parseStored(text)?.member : undefined
      }),
    list: (channel) =>
      run("presence list", async () => {
        const members = storedMembers(await client.hgetall(channelKey(channel)))
        const nodes = [...new Set(members.map((m) => m.node))]
        if (nodes.length === 0) return []
        const [scores, time] = await Promise.all([client.zmscore(nodesKey, ...nodes), client.time()])
        const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000)
        const dead = new Set(nodes.filter((_, i) => scores[i] !== null && Number(scores[i]) < now))
        return members.filter((m) => !dead.has(m.node)).map((m): PresenceMember => m.member)
      }),
    heartbeat: (node, expiresAt) =>
      run("presence heartbeat", async () => (await client.zadd(nodesKey, expiresAt, node)) === 1),
    sweep: (now) =>
      run("presence sweep", async () => {
        const removed: Array<PresenceRemoval> = []
        for (const node of await client.zrangebyscore(nodesKey, "-inf", `(${now}`)) {
          for (const channel of await client.smembers(nodeKey(node))) {
            const key = channelKey(channel)
            const hash = await client.hgetall(key)
            for (const [id, text] of Object.entries(hash)) {
              const stored = parseStored(text)
              if (stored?.node !== node) continue
              if ((await client.hdel(key, id)) === 1) removed.push({ channel, member: stored.member })
            }
          }
          // a node that resumes after this finds itself unregistered at its next heartbeat and writes its members again
          const forgotten = await client.zrem(nodesKey, node)
          if (forgotten === 1) await client.del(nodeKey(node))
        }
        return removed
      })
  }
}
