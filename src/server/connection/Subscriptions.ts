/**
 * A connection's subscriptions by channel, held in one field of the Connection: nothing, the subscription itself
 * (nearly every connection holds exactly one), or a Map from the second channel on. An empty V8 Map with its hash
 * table is about 280 bytes and even a two-field wrapper 48, against the 2.7 KiB bare ws keeps per connection
 * (docs/performance.md, memory). A subscription knows its channel, so the single one needs no key beside it.
 * `put` and `remove` return the field's new value.
 */
import type { Subscription } from "../fanout/index.ts"

export type Subscriptions = Subscription | Map<string, Subscription> | undefined

export const get = (subscriptions: Subscriptions, channel: string): Subscription | undefined =>
  subscriptions instanceof Map
    ? subscriptions.get(channel)
    : subscriptions?.channel === channel
      ? subscriptions
      : undefined

export const count = (subscriptions: Subscriptions): number =>
  subscriptions instanceof Map ? subscriptions.size : subscriptions === undefined ? 0 : 1

/** Adds `subscription`, replacing the one to the same channel if there is one. */
export const put = (subscriptions: Subscriptions, subscription: Subscription): Subscriptions => {
  if (subscriptions instanceof Map) return subscriptions.set(subscription.channel, subscription)
  if (subscriptions === undefined || subscriptions.channel === subscription.channel) return subscription
  return new Map([
    [subscriptions.channel, subscriptions],
    [subscription.channel, subscription]
  ])
}

/** Removes the subscription to `channel`, if there is one. */
export const remove = (subscriptions: Subscriptions, channel: string): Subscriptions => {
  if (!(subscriptions instanceof Map)) return subscriptions?.channel === channel ? undefined : subscriptions
  subscriptions.delete(channel)
  return subscriptions.size === 0 ? undefined : subscriptions
}

export const all = (subscriptions: Subscriptions): Array<Subscription> =>
  subscriptions instanceof Map ? [...subscriptions.values()] : subscriptions === undefined ? [] : [subscriptions]
