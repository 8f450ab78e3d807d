/** Effect wrappers over the raw test peer: connect + authenticate (in either codec), subscribe, wait for a frame. */
import { Effect } from "effect"
import type { Codec } from "../../../src/protocol/Negotiation.ts"
import { connectRaw, type Frame, type RawClient } from "./rawClient.ts"
import { sign } from "./testServer.ts"

export const defaultClaims = { sub: "alice", channels: ["room:*"] }

export const connect = (
  url: string,
  claims: Record<string, unknown> = defaultClaims,
  version = 2,
  extra: { session?: string; codec?: Codec } = {}
) =>
  Effect.promise(async () => {
    const { codec = "json", ...fields } = extra
    const client = await connectRaw(url, { protocols: [`tidings.chat.v${version}.${codec}`] })
    client.send({ type: "authenticate", token: await sign(claims), ...fields })
    await client.next((f) => f.type === "welcome")
    return client
  })

export const subscribe = (client: RawClient, channel: string, since?: object) =>
  Effect.promise(async () => {
    const before = client.frames.length
    client.send({ type: "subscribe", channel, ...(since ? { since } : {}) })
    return client.next((f) => f.type === "subscribed" && f.channel === channel && client.frames.indexOf(f) >= before)
  })

export const next = (client: RawClient, predicate: (f: Frame) => boolean, timeoutMs?: number) =>
  Effect.promise(() => client.next(predicate, timeoutMs))

export const unique = (prefix: string) => `${prefix}:${Math.random().toString(36).slice(2, 10)}`
