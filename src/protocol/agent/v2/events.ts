/**
 * The events of agent protocol v2 (server → client): the `data` schema of each wire event name.
 *
 * v2 is what the server speaks internally. Compared with v1 it reports progress in percent, sends screenshots
 * as `{ mime, data }` objects, groups a step's id and number, gives tasks an id and a kind, says whether an
 * error is retryable, reports a cancelled run as such, and adds two events (`checkpoint_resolved`, `usage`).
 * Events it did not change are re-exported from v1/events.ts. How each one reaches a v1 client is in
 * ../migration.ts.
 */
import { Schema } from "effect"
import {
  Count,
  ExecutionId,
  Json,
  Label,
  Message,
  NonEmptyLabel,
  Percent,
  Screenshot,
  SessionId,
  StepCount,
  StepId,
  StepNumber,
  StepStatus,
  TaskId,
  Text,
  Url,
  UserId
} from "../fields.ts"
import {
  BrowserCommand,
  CheckpointRequired,
  MessageChunk as MessageChunkV1,
  Notification,
  UserActivity
} from "../v1/events.ts"

/** Unchanged since v1. */
export {
  BrowserCommand,
  CheckpointRequired,
  ClickElement,
  Notification,
  OpenTab,
  Scroll,
  Speak,
  UserActivity
} from "../v1/events.ts"

// ---- changed since v1 ------------------------------------------------------------------------------------------

/**
 * `message_chunk`: one piece of a streamed message; the last piece has `done: true`. New in v2: `restart` on the
 * first chunk of a message that starts over (the step streaming it was re-executed after a crash): drop what
 * you have of that `messageId` and build it again from this chunk.
 */
export const MessageChunk = Schema.Struct({
  ...MessageChunkV1.fields,
  restart: Schema.optionalKey(Schema.Boolean)
}).annotate({ identifier: "AgentMessageChunkV2", description: "A chunk of a streamed message" })
export type MessageChunk = typeof MessageChunk.Type

/** v1 phases plus `retrieving`, `installing` and `waiting_for_input`. */
export const Phase = Schema.Literals([
  "idle",
  "thinking",
  "searching",
  "scraping",
  "browsing",
  "processing",
  "retrieving",
  "installing",
  "waiting_for_input"
])
export type Phase = typeof Phase.Type

/** `status`: what the agent is doing right now; `detail` is optional since v2. */
export const Status = Schema.Struct({
  phase: Phase,
  detail: Schema.optionalKey(Message)
}).annotate({ identifier: "AgentStatusV2" })
export type Status = typeof Status.Type

/** `error`: something went wrong; `stepId` (v1: `step`) names the step, `retryable` says whether to try again. */
export const ErrorEvent = Schema.Struct({
  code: NonEmptyLabel,
  message: Message,
  stepId: Schema.optionalKey(StepId),
  retryable: Schema.Boolean
}).annotate({ identifier: "AgentErrorV2" })
export type ErrorEvent = typeof ErrorEvent.Type

/** v1 `pending` is `queued`, v1 `paused` is `awaiting_input`. */
export const ExecutionStatus = Schema.Literals([
  "queued",
  "running",
  "awaiting_input",
  "completed",
  "failed",
  "cancelled"
])
export type ExecutionStatus = typeof ExecutionStatus.Type

/** `execution_update`: the state of a whole execution; `progress` in percent, `totalSteps` when known. */
export const ExecutionUpdate = Schema.Struct({
  executionId: ExecutionId,
  status: ExecutionStatus,
  currentStep: StepCount,
  totalSteps: Schema.optionalKey(StepCount),
  progress: Percent
}).annotate({ identifier: "AgentExecutionUpdateV2" })
export type ExecutionUpdate = typeof ExecutionUpdate.Type

/** A step's id and 1-based number, together. */
export const StepRef = Schema.Struct({ id: StepId, number: StepNumber }).annotate({ identifier: "AgentStepRef" })
export type StepRef = typeof StepRef.Type

/** `step_update`: the state of one step of an execution. */
export const StepUpdate = Schema.Struct({
  executionId: ExecutionId,
  step: StepRef,
  status: StepStatus,
  action: Label,
  explanation: Text,
  result: Schema.optionalKey(Text),
  screenshot: Schema.optionalKey(Screenshot)
}).annotate({ identifier: "AgentStepUpdateV2" })
export type StepUpdate = typeof StepUpdate.Type

/** `browser_update`: the latest view of a browser session (a latest-value stream). */
export const BrowserUpdate = Schema.Struct({
  sessionId: SessionId,
  screenshot: Screenshot,
  url: Url,
  title: Schema.optionalKey(Label)
}).annotate({ identifier: "AgentBrowserUpdateV2" })
export type BrowserUpdate = typeof BrowserUpdate.Type

export const TaskKind = Schema.Literals(["document_processing", "retrieval", "install", "other"])
export type TaskKind = typeof TaskKind.Type

/** `task_progress`: progress of a long job; `taskId` tells concurrent jobs apart. */
export const TaskProgress = Schema.Struct({
  taskId: TaskId,
  kind: TaskKind,
  stage: NonEmptyLabel,
  progress: Percent,
  message: Message
}).annotate({ identifier: "AgentTaskProgressV2" })
export type TaskProgress = typeof TaskProgress.Type

/** Why something failed: a stable code and a human message. */
export const Failure = Schema.Struct({ code: NonEmptyLabel, message: Message }).annotate({
  identifier: "AgentFailure"
})
export type Failure = typeof Failure.Type

export const Succeeded = Schema.Struct({ outcome: Schema.tag("succeeded"), executionId: ExecutionId, result: Json })
export const Failed = Schema.Struct({ outcome: Schema.tag("failed"), executionId: ExecutionId, error: Failure })
export const Cancelled = Schema.Struct({
  outcome: Schema.tag("cancelled"),
  executionId: ExecutionId,
  reason: Schema.optionalKey(Message)
})

/** `completion`: the run ended, discriminated by `outcome`. */
export const Completion = Schema.Union([Succeeded, Failed, Cancelled])
  .pipe(Schema.toTaggedUnion("outcome"))
  .annotate({ identifier: "AgentCompletionV2" })
export type Completion = typeof Completion.Type

// ---- new in v2 -------------------------------------------------------------------------------------------------

/** `checkpoint_resolved`: someone answered the checkpoint at `stepId`; other viewers can close their prompt. */
export const CheckpointResolved = Schema.Struct({
  executionId: ExecutionId,
  stepId: StepId,
  by: UserId,
  answer: Json
}).annotate({ identifier: "AgentCheckpointResolved" })
export type CheckpointResolved = typeof CheckpointResolved.Type

/** `usage`: model tokens an execution has used so far (cumulative). */
export const Usage = Schema.Struct({
  executionId: ExecutionId,
  model: NonEmptyLabel,
  inputTokens: Count,
  outputTokens: Count
}).annotate({ identifier: "AgentUsage" })
export type Usage = typeof Usage.Type

/** Every v2 event: wire name → schema of its `data`. */
export const events = {
  message_chunk: MessageChunk,
  status: Status,
  browser_command: BrowserCommand,
  notification: Notification,
  error: ErrorEvent,
  execution_update: ExecutionUpdate,
  step_update: StepUpdate,
  browser_update: BrowserUpdate,
  checkpoint_required: CheckpointRequired,
  task_progress: TaskProgress,
  completion: Completion,
  user_activity: UserActivity,
  checkpoint_resolved: CheckpointResolved,
  usage: Usage
}
