/**
 * The events of agent protocol v1 (server → client): the `data` schema of each wire event name.
 *
 * v1 is the shape the systems tidings grew from spoke: progress as a 0–1 fraction, screenshots as data URLs,
 * step ids and numbers as flat fields, completion as a `success` boolean. Events that v2 kept unchanged are
 * defined here and re-exported by v2/events.ts; the conversions from v2 live in ../migration.ts.
 */
import { Schema } from "effect"
import {
  ExecutionId,
  Fraction,
  Json,
  Label,
  Message,
  MessageId,
  NonEmptyLabel,
  NotificationLevel,
  Role,
  ScreenshotDataUrl,
  SessionId,
  StepCount,
  StepId,
  StepNumber,
  StepStatus,
  Text,
  Url,
  UserId
} from "../fields.ts"

// ---- unchanged in v2 -------------------------------------------------------------------------------------------

/** `message_chunk`: one piece of a streamed message; the last piece has `done: true`. */
export const MessageChunk = Schema.Struct({
  messageId: MessageId,
  role: Role,
  text: Text,
  done: Schema.Boolean
}).annotate({ identifier: "AgentMessageChunk", description: "A chunk of a streamed message" })
export type MessageChunk = typeof MessageChunk.Type

const TabIndex = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 1_000 })).annotate({
  description: "0-based index of a browser tab"
})
const Pixels = Schema.Int.check(Schema.isBetween({ minimum: -1_000_000, maximum: 1_000_000 })).annotate({
  description: "Vertical scroll in CSS pixels; negative scrolls up"
})

export const OpenTab = Schema.Struct({ action: Schema.tag("OPEN_TAB"), url: Url })
export const Scroll = Schema.Struct({ action: Schema.tag("SCROLL"), tab: TabIndex, amount: Pixels })
export const ClickElement = Schema.Struct({
  action: Schema.tag("CLICK_ELEMENT"),
  selector: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(4_096)).annotate({
    description: "A CSS selector"
  })
})
export const Speak = Schema.Struct({ action: Schema.tag("SPEAK"), text: Message })

/** `browser_command`: something the client-side browser should do, discriminated by `action`. */
export const BrowserCommand = Schema.Union([OpenTab, Scroll, ClickElement, Speak])
  .pipe(Schema.toTaggedUnion("action"))
  .annotate({ identifier: "AgentBrowserCommand", description: "A command for the client-side browser" })
export type BrowserCommand = typeof BrowserCommand.Type

/** `notification`: a message for the user, shown as a toast or banner. */
export const Notification = Schema.Struct({
  level: NotificationLevel,
  title: Label,
  message: Message
}).annotate({ identifier: "AgentNotification" })
export type Notification = typeof Notification.Type

/** `checkpoint_required`: the run is paused until a human answers with `feedback` for this step. */
export const CheckpointRequired = Schema.Struct({
  executionId: ExecutionId,
  stepId: StepId,
  data: Json.annotate({ description: "What the human decides on; its shape depends on the step" })
}).annotate({ identifier: "AgentCheckpointRequired" })
export type CheckpointRequired = typeof CheckpointRequired.Type

/** `user_activity`: another user did something on the same run (presence, collaboration). */
export const UserActivity = Schema.Struct({
  user: UserId,
  action: NonEmptyLabel,
  target: Label
}).annotate({ identifier: "AgentUserActivity" })
export type UserActivity = typeof UserActivity.Type

// ---- changed in v2 ---------------------------------------------------------------------------------------------

export const Phase = Schema.Literals(["idle", "thinking", "searching", "scraping", "browsing", "processing"])
export type Phase = typeof Phase.Type

/** `status`: what the agent is doing right now. */
export const Status = Schema.Struct({
  phase: Phase,
  detail: Message
}).annotate({ identifier: "AgentStatusV1" })
export type Status = typeof Status.Type

/** `error`: something went wrong; `step` is the id of the step it happened in, when there is one. */
export const ErrorEvent = Schema.Struct({
  code: NonEmptyLabel,
  message: Message,
  step: Schema.optionalKey(StepId)
}).annotate({ identifier: "AgentErrorV1" })
export type ErrorEvent = typeof ErrorEvent.Type

export const ExecutionStatus = Schema.Literals(["pending", "running", "paused", "completed", "failed", "cancelled"])
export type ExecutionStatus = typeof ExecutionStatus.Type

/** `execution_update`: the state of a whole execution. */
export const ExecutionUpdate = Schema.Struct({
  executionId: ExecutionId,
  status: ExecutionStatus,
  currentStep: StepCount,
  progress: Fraction
}).annotate({ identifier: "AgentExecutionUpdateV1" })
export type ExecutionUpdate = typeof ExecutionUpdate.Type

/** `step_update`: the state of one step of an execution. */
export const StepUpdate = Schema.Struct({
  executionId: ExecutionId,
  stepId: StepId,
  stepNumber: StepNumber,
  status: StepStatus,
  action: Label,
  explanation: Text,
  result: Schema.optionalKey(Text),
  screenshot: Schema.optionalKey(ScreenshotDataUrl)
}).annotate({ identifier: "AgentStepUpdateV1" })
export type StepUpdate = typeof StepUpdate.Type

/** `browser_update`: the latest view of a browser session (a latest-value stream). */
export const BrowserUpdate = Schema.Struct({
  sessionId: SessionId,
  screenshot: ScreenshotDataUrl,
  url: Url
}).annotate({ identifier: "AgentBrowserUpdateV1" })
export type BrowserUpdate = typeof BrowserUpdate.Type

/** `task_progress`: progress of a long job (document processing, retrieval, an install). */
export const TaskProgress = Schema.Struct({
  stage: NonEmptyLabel,
  progress: Fraction,
  message: Message
}).annotate({ identifier: "AgentTaskProgressV1" })
export type TaskProgress = typeof TaskProgress.Type

/** `completion`: the run ended; `result` when it succeeded, `error` when it did not. */
export const Completion = Schema.Struct({
  success: Schema.Boolean,
  result: Schema.optionalKey(Json),
  error: Schema.optionalKey(Message)
}).annotate({ identifier: "AgentCompletionV1" })
export type Completion = typeof Completion.Type

/** Every v1 event: wire name → schema of its `data`. */
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
  user_activity: UserActivity
}
