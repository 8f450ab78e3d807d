/**
 * Agent protocol v2 as a catalog version: its events, its commands, and which events are latest-value streams.
 * The schemas themselves live in events.ts and commands.ts.
 */
import { version } from "../../Protocol.ts"
import { commands } from "./commands.ts"
import { events } from "./events.ts"

export const AgentV2 = version({
  version: 2,
  events,
  commands,
  latestValue: ["browser_update"]
})
export type AgentV2 = typeof AgentV2
