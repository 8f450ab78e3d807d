/**
 * Handlers and subscription handles: the registries of app callbacks, the handle `subscribe` returns, and
 * the runner that calls handlers, collects the promises they return and turns throws into HandlerFailed.
 *
 * Typing happens at the public surface (Client.ts); here handlers are erased to `unknown` data. Which events
 * reach a handler, and in what order, is decided by Channels.ts.
 */
import type { Position } from "../protocol/Position.ts"
import type { VersionDef } from "../protocol/Protocol.ts"
import { type ClientIssue, Disconnected, HandlerFailed } from "./errors.ts"
import type { EventMeta, ResetNotice, SubscribedInfo, Subscription } from "./types.ts"

export interface ErasedEvent {
  readonly _tag: "Event"
  readonly event: string
  readonly data: unknown
  readonly meta: EventMeta
}
export type ErasedHandler = (data: unknown, meta: EventMeta) => unknown
export type ErasedEventHandler = (event: ErasedEvent) => unknown
export type ErasedResetHandler = (reset: ResetNotice) => unknown

/** Adds `handler` under `key`; returns its removal. */
export const addTo = <K, H>(map: Map<K, Set<H>>, key: K, handler: H): (() => void) => {
  let set = map.get(key)
  if (set === undefined) map.set(key, (set = new Set()))
  set.add(handler)
  return () => {
    set.delete(handler)
  }
}

export const addToSet = <H>(set: Set<H>, handler: H): (() => void) => {
  set.add(handler)
  return () => {
    set.delete(handler)
  }
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function"

/** Runs one handler of `event` on `channel`. */
export type Run = (channel: string, event: string, call: () => unknown) => void

/**
 * A runner for one delivery: `run` calls handlers, catching throws and rejections (reported as HandlerFailed);
 * `settled` is undefined when every handler returned synchronously, else a promise of them all.
 */
export const runner = (
  issue: (issue: ClientIssue) => void
): { run: Run; settled: () => PromiseLike<void> | undefined } => {
  let waits: Array<PromiseLike<unknown>> | undefined
  const run: Run = (channel, event, call) => {
    try {
      const result = call()
      if (isThenable(result)) {
        const guarded = Promise.resolve(result).catch((cause: unknown) =>
          issue(new HandlerFailed({ channel, event, cause }))
        )
        ;(waits ??= []).push(guarded)
      }
    } catch (cause) {
      issue(new HandlerFailed({ channel, event, cause }))
    }
  }
  const settled = () => (waits === undefined ? undefined : Promise.all(waits).then(() => undefined))
  return { run, settled }
}

/** What a handle reads from its channel. */
export interface SubscriptionSource {
  readonly position: () => Position | undefined
  readonly live: () => SubscribedInfo | undefined
  /** Why the handle can no longer become live (client closed, subscribe refused), if so. */
  readonly failure: () => unknown
  readonly release: (sub: SubscriptionImpl) => void
}

export class SubscriptionImpl implements Subscription<VersionDef> {
  readonly handlers = new Map<string, Set<ErasedHandler>>()
  readonly eventHandlers = new Set<ErasedEventHandler>()
  readonly resetHandlers = new Set<ErasedResetHandler>()
  private waiters: Array<{ resolve: (info: SubscribedInfo) => void; reject: (error: unknown) => void }> = []
  private done = false

  constructor(
    readonly channel: string,
    private readonly source: SubscriptionSource
  ) {}

  position = () => this.source.position()
  on = (event: string, handler: ErasedHandler) => addTo(this.handlers, event, handler)
  onEvent = (handler: ErasedEventHandler) => addToSet(this.eventHandlers, handler)
  onReset = (handler: ErasedResetHandler) => addToSet(this.resetHandlers, handler)

  ready = (): Promise<SubscribedInfo> => {
    const live = this.source.live()
    if (live !== undefined) return Promise.resolve(live)
    const failure = this.source.failure()
    if (this.done || failure !== undefined) {
      return Promise.reject(failure ?? new Disconnected({ reason: "unsubscribed" }))
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }))
  }

  unsubscribe = () => {
    if (this.done) return
    this.done = true
    this.source.release(this)
    this.settle(undefined, new Disconnected({ reason: "unsubscribed" }))
  }

  dispatch(event: ErasedEvent, run: Run): void {
    const handlers = this.handlers.get(event.event)
    if (handlers !== undefined) {
      for (const h of [...handlers]) run(this.channel, event.event, () => h(event.data, event.meta))
    }
    for (const h of [...this.eventHandlers]) run(this.channel, event.event, () => h(event))
  }

  dispatchReset(reset: ResetNotice, run: Run): void {
    for (const h of [...this.resetHandlers]) run(reset.channel, "reset", () => h(reset))
  }

  /** Resolves (with `info`) or rejects (with `error`) every pending `ready()`. */
  settle(info: SubscribedInfo | undefined, error?: unknown): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) {
      if (info !== undefined) w.resolve(info)
      else w.reject(error)
    }
  }
}
