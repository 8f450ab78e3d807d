/**
 * From the transport to subscribers on this node: one transport listener per channel, entries encoded once per
 * version and handed to every subscription, replay frames shared between catch-ups, history reads shared between
 * subscriptions. Uses outbound/.
 */
export { EntryFrames, Hub, type SubscriberSink, Subscription } from "./Fanout.ts"
export type { Read } from "./SharedReads.ts"
export * as SharedReads from "./SharedReads.ts"
