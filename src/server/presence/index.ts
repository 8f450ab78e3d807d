/** Presence: who is subscribed to a channel, across nodes (PresenceTracker.ts), and how it is configured. */
export * from "./PresenceOptions.ts"
export { PresenceTracker, type TrackerEnv } from "./PresenceTracker.ts"
