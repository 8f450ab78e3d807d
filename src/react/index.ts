/**
 * `tidings/react`: React hooks over a client (React is an optional peer dependency; nothing else imports it).
 *
 * - `useConnectionState(client)`: `connecting | open | reconnecting | closed`, re-rendering on every change.
 * - `useChannel(client, channel, fold, initial)`: a channel's events folded into a value — a run's state, a
 *   streamed message, a list of steps — re-rendering as events arrive. The fold lives outside the component, one
 *   per client, channel and fold function: StrictMode's double mount, a component that unmounts and mounts again,
 *   or two components on one channel share one subscription and see the whole channel (from its first retained
 *   event by default), each event once. Reconnects are the client's: the fold continues after the last event it
 *   got; a reset (history gone) is folded as `{ kind: "reset" }` so the view can say so.
 */
import { useSyncExternalStore } from "react"
import type { Client, ClientState, ReceivedEvent, ResetNotice } from "../client/types.ts"
import type { VersionDef } from "../protocol/Protocol.ts"

/** What a fold receives: an event of the channel, or the notice that part of its history is gone. */
export type ChannelInput<V extends VersionDef> =
  | ({ readonly kind: "event" } & ReceivedEvent<V>)
  | { readonly kind: "reset"; readonly reset: ResetNotice }

export type Fold<V extends VersionDef, S> = (state: S, input: ChannelInput<V>) => S

/** The connection's state, re-rendering on every change. */
export const useConnectionState = <V extends VersionDef>(client: Client<V>): ClientState =>
  useSyncExternalStore(
    (onChange) => client.onState(onChange),
    () => client.state,
    () => client.state
  )

interface Store<S> {
  value: S
  readonly listeners: Set<() => void>
}

/** Folded channels per client, then per channel and fold. */
const stores = new WeakMap<object, Map<string, Map<Function, Store<unknown>>>>()

const storeOf = <V extends VersionDef, S>(
  client: Client<V>,
  channel: string,
  fold: Fold<V, S>,
  initial: S,
  fromStart: boolean
): Store<S> => {
  let channels = stores.get(client)
  if (channels === undefined) {
    channels = new Map()
    stores.set(client, channels)
  }
  let folds = channels.get(channel)
  if (folds === undefined) {
    folds = new Map()
    channels.set(channel, folds)
  }
  let store = folds.get(fold) as Store<S> | undefined
  if (store === undefined) {
    const created: Store<S> = { value: initial, listeners: new Set() }
    store = created
    folds.set(fold, created as Store<unknown>)
    const apply = (input: ChannelInput<V>) => {
      created.value = fold(created.value, input)
      for (const listener of [...created.listeners]) listener()
    }
    const subscription = client.subscribe(channel, { fromStart })
    subscription.onEvent((event) => apply({ kind: "event", ...event }))
    subscription.onReset((reset) => apply({ kind: "reset", reset }))
  }
  return store
}

/**
 * A channel's events folded into a value. `fold` should be a stable function (defined outside the component):
 * it names the view, and another function starts another one. `channel` undefined renders `initial`.
 */
export const useChannel = <V extends VersionDef, S>(
  client: Client<V>,
  channel: string | undefined,
  fold: Fold<V, S>,
  initial: S,
  options: { readonly fromStart?: boolean } = {}
): S => {
  const fromStart = options.fromStart ?? true
  // React calls `subscribe` after the commit: the channel's subscription is made there, once per client, channel
  // and fold
  return useSyncExternalStore(
    (onChange) => {
      if (channel === undefined) return () => {}
      const store = storeOf(client, channel, fold, initial, fromStart)
      store.listeners.add(onChange)
      return () => store.listeners.delete(onChange)
    },
    () =>
      channel === undefined
        ? initial
        : ((stores.get(client)?.get(channel)?.get(fold)?.value as S | undefined) ?? initial),
    () => initial
  )
}
