/**
 * Agent protocol v1 as a catalog version: its events, its commands, and which events are latest-value streams.
 * The schemas themselves live in events.ts and commands.ts.
 */
import { version } from "../../Protocol.ts"
import { commands } from "./commands.ts"
import { events } from "./events.ts"

export const AgentV1 = version({
  version: 1,
  events,
  commands,
  latestValue: ["browser_update"]
})
export type AgentV1 = typeof AgentV1
