/**
 * The built-in `agent` protocol (`tidings/agent`): the events and commands of an AI agent run — streamed
 * messages, status, browser commands and screenshots, steps, checkpoints, long-task progress, completion — in
 * two live versions joined by a migration, so that v1 and v2 clients can follow the same run.
 *
 * This module only assembles and exports; the schemas are in v1/ and v2/, the conversions in migration.ts and
 * the shared limits in fields.ts.
 */
import type {
  CommandError,
  CommandName,
  CommandOf,
  CommandPayload,
  CommandResult,
  EventData,
  EventName,
  EventOf,
  ReplyOf
} from "../Protocol.ts"
import { make } from "../Protocol.ts"
import { migration } from "./migration.ts"
import { AgentV1 } from "./v1/version.ts"
import { AgentV2 } from "./v2/version.ts"

export {
  MAX_ID_LENGTH,
  MAX_LABEL_LENGTH,
  MAX_MESSAGE_LENGTH,
  MAX_SCREENSHOT_BASE64_LENGTH,
  MAX_STEPS,
  MAX_TEXT_LENGTH,
  MAX_URL_LENGTH,
  screenshotToDataUrl
} from "./fields.ts"
export { migration as migrationV1V2, V1_START_MODE } from "./migration.ts"
export * as CommandsV1 from "./v1/commands.ts"
export * as EventsV1 from "./v1/events.ts"
export { AgentV1 } from "./v1/version.ts"
export * as CommandsV2 from "./v2/commands.ts"
export * as EventsV2 from "./v2/events.ts"
export { AgentV2 } from "./v2/version.ts"

/** The agent protocol: versions 1 and 2, the server speaking 2. */
export const AgentProtocol = make("agent", AgentV1).evolve(AgentV2, migration)
export type AgentProtocol = typeof AgentProtocol

// ---- the latest version, as handlers and v2 clients see it ------------------------------------------------------

export type AgentEventName = EventName<AgentV2>
/** One v2 event: `{ event: "step_update", data: {...} }`. */
export type AgentEvent = EventOf<AgentV2>
export type AgentEventData<K extends AgentEventName> = EventData<AgentV2, K>
export type AgentCommandName = CommandName<AgentV2>
/** One v2 command: `{ name: "start", payload: {...} }`. */
export type AgentCommand = CommandOf<AgentV2>
export type AgentCommandPayload<K extends AgentCommandName> = CommandPayload<AgentV2, K>
export type AgentCommandResult<K extends AgentCommandName> = CommandResult<AgentV2, K>
export type AgentCommandError<K extends AgentCommandName> = CommandError<AgentV2, K>
export type AgentReply = ReplyOf<AgentV2>

// ---- v1, as a v1 client sees it ---------------------------------------------------------------------------------

export type AgentEventV1 = EventOf<AgentV1>
export type AgentCommandV1 = CommandOf<AgentV1>
export type AgentReplyV1 = ReplyOf<AgentV1>
