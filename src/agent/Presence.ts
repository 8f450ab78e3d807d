/**
 * Presence for the agent protocol: who is watching a run. A subscription to a run's channel (`run:*` by default)
 * joins its presence, and joins and leaves are announced on the channel as `user_activity` events
 * (`{user, action: "joined" | "left", target: <channel>}`), so every viewer of a run sees who else is there.
 * `tidings serve` turns it on (TIDINGS_PRESENCE).
 */
import type { AgentProtocol } from "../protocol/agent/index.ts"
import type { PresenceMember, PresenceOptions } from "../server/presence/index.ts"

const activity = (action: "joined" | "left") => (member: PresenceMember, channel: string) => ({
  event: "user_activity" as const,
  data: { user: member.user ?? "anonymous", action, target: channel }
})

export const agentPresence = (channels = "run:*", expiryMs?: number): PresenceOptions<typeof AgentProtocol> => ({
  rules: [{ channels, join: activity("joined"), leave: activity("left") }],
  ...(expiryMs === undefined ? {} : { expiryMs })
})
