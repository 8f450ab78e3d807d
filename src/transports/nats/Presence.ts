/**
 * Presence in NATS (PresenceStore.ts), in a KV-compatible stream (`KV_<bucket>`, one message per key, readable
 * with `nats kv`): key `m.<channel token>.<member id>` holds a member and its node as JSON, key `n.<node>` a node's
 * heartbeat expiry. Removal deletes the member's message by its sequence: JetStream deletes a message once, so
 * exactly one caller is told it removed it. A sweep reads the heartbeats and, when one has expired, every member
 * (the cost grows with the number of members: fine for thousands, not for millions); heartbeat expiry is compared
 * with the sweeping node's clock.
 */
import type { StoredMsg } from "@nats-io/jetstream"
import { Effect } from "effect"
import {
  type PresenceMember,
  type PresenceRemoval,
  type PresenceStore,
  parseStored
} from "../presence/PresenceStore.ts"
import type { TransportError } from "../Transport.ts"
import { channelToken, tokenChannel } from "./codec.ts"
import type { Link } from "./Link.ts"

const textEncoder = new TextEncoder()

export const presenceStreamName = (bucket: string): string => `KV_${bucket}`
export const presenceSubjects = (bucket: string): string => `$KV.${bucket}.>`

export const make = (link: Link, bucket: string): PresenceStore => {
  const stream = presenceStreamName(bucket)
  const base = `$KV.${bucket}.`
  const memberSubject = (channel: string, id: string) => `${base}m.${channelToken(channel)}.${id}`
  const nodeSubject = (node: string) => `${base}n.${node}`
  const run = <A>(attempt: () => Promise<A>): Effect.Effect<A, TransportError> =>
    Effect.tryPromise({ try: attempt, catch: (error) => link.toTransportError(error) })

  const subjects = async (filter: string): Promise<Array<string>> => {
    const info = await link.call(() => link.jsm.streams.info(stream, { subjects_filter: filter }))
    return Object.keys(info.state.subjects ?? {})
  }
  const last = (subject: string): Promise<StoredMsg | null> =>
    link.call(() => link.jsm.streams.getMessage(stream, { last_by_subj: subject }))
  /** Deletes one message; false when it was gone already (another caller deleted it). */
  const remove = async (seq: number): Promise<boolean> => {
    try {
      return await link.call(() => link.jsm.streams.deleteMessage(stream, seq, false))
    } catch (error) {
      if (error instanceof Error && /no message found|not found/i.test(error.message)) return false
      throw error
    }
  }
  const expiryOf = async (node: string): Promise<number | undefined> => {
    const message = await last(nodeSubject(node))
    if (message === null) return undefined
    const value = Number(new TextDecoder().decode(message.data))
    return Number.isFinite(value) ? value : undefined
  }

  return {
    join: (channel, member, node) =>
      run(async () => {
        const body = textEncoder.encode(JSON.stringify({ member, node }))
        await link.call(() => link.publisher.publish(memberSubject(channel, member.id), body))
      }),
    leave: (channel, memberId) =>
      run(async () => {
        const message = await last(memberSubject(channel, memberId))
        if (message === null) return undefined
        const stored = parseStored(new TextDecoder().decode(message.data))
        return (await remove(message.seq)) ? stored?.member : undefined
      }),
    list: (channel) =>
      run(async () => {
        const found = await subjects(`${base}m.${channelToken(channel)}.*`)
        const stored = (await Promise.all(found.map(last))).flatMap((message) => {
          const value = message === null ? undefined : parseStored(new TextDecoder().decode(message.data))
          return value === undefined ? [] : [value]
        })
        const nodes = [...new Set(stored.map((s) => s.node))]
        const expiries = await Promise.all(nodes.map(expiryOf))
        const now = Date.now()
        const dead = new Set(nodes.filter((_, i) => (expiries[i] ?? Number.POSITIVE_INFINITY) < now))
        return stored.filter((s) => !dead.has(s.node)).map((s): PresenceMember => s.member)
      }),
    heartbeat: (node, expiresAt) =>
      run(async () => {
        const known = (await last(nodeSubject(node))) !== null
        await link.call(() => link.publisher.publish(nodeSubject(node), textEncoder.encode(String(expiresAt))))
        return !known
      }),
    sweep: (now) =>
      run(async () => {
        const removed: Array<PresenceRemoval> = []
        const dead = new Map<string, number>()
        for (const subject of await subjects(`${base}n.*`)) {
          const message = await last(subject)
          const expiresAt = message === null ? Number.NaN : Number(new TextDecoder().decode(message.data))
          if (message !== null && expiresAt < now) dead.set(subject.slice(`${base}n.`.length), message.seq)
        }
        if (dead.size === 0) return removed
        for (const subject of await subjects(`${base}m.>`)) {
          const message = await last(subject)
          const stored = message === null ? undefined : parseStored(new TextDecoder().decode(message.data))
          if (message === null || stored === undefined || !dead.has(stored.node)) continue
          if (await remove(message.seq)) {
            const token = subject.slice(`${base}m.`.length, subject.lastIndexOf("."))
            removed.push({ channel: tokenChannel(token), member: stored.member })
          }
        }
        // a node that renewed its heartbeat meanwhile has a newer message: deleting the old one fails, it stays
        for (const seq of dead.values()) await remove(seq)
        return removed
      })
  }
}
