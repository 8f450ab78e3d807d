/**
 * The commands of agent protocol v2 (client → server): payload, result and error schemas of `start`,
 * `cancel` and `feedback`, as the server's handlers see them.
 *
 * Compared with v1: `start` requires a `mode` and answers with the run's channel, `cancel` takes an optional
 * reason and says whether it cancelled anything, `feedback` names what it answers with a `target` discriminated
 * by `kind` and accepts any JSON answer, and three errors are new (`ModeUnavailable`, `NotRunOwner`,
 * `RunLimitReached.retryAfterMs`). Schemas it did not change are re-exported from v1/commands.ts; the
 * conversions are in ../migration.ts.
 */
import { Schema } from "effect"
import { ChannelName } from "../../Frames.ts"
import { command } from "../../Protocol.ts"
import { Count, Json, JsonObject, Message, RunId, StepId } from "../fields.ts"
import {
  CheckpointNotPending,
  FeedbackResult,
  InvalidQuery,
  Query,
  QuestionNotPending,
  RunNotFound
} from "../v1/commands.ts"

/** Unchanged since v1. */
export {
  CheckpointNotPending,
  FeedbackResult,
  InvalidQuery,
  Query,
  QuestionNotPending,
  RunNotFound
} from "../v1/commands.ts"

// ---- errors ----------------------------------------------------------------------------------------------------

/** The caller already has `limit` runs going; try again after `retryAfterMs` or cancel one. */
export const RunLimitReached = Schema.TaggedStruct("RunLimitReached", {
  limit: Count,
  retryAfterMs: Count
}).annotate({ identifier: "AgentRunLimitReachedV2" })
export type RunLimitReached = typeof RunLimitReached.Type

export const Mode = Schema.Literals(["auto", "chat", "browse", "research"]).annotate({
  description: "How the agent works: `auto` lets it choose"
})
export type Mode = typeof Mode.Type

/** This server does not offer that mode; `auto` is always a safe choice. */
export const ModeUnavailable = Schema.TaggedStruct("ModeUnavailable", { mode: Mode }).annotate({
  identifier: "AgentModeUnavailable"
})
export type ModeUnavailable = typeof ModeUnavailable.Type

/** The run exists but belongs to someone else; only its owner may cancel it or answer for it. */
export const NotRunOwner = Schema.TaggedStruct("NotRunOwner", { runId: RunId }).annotate({
  identifier: "AgentNotRunOwner"
})
export type NotRunOwner = typeof NotRunOwner.Type

// ---- start -----------------------------------------------------------------------------------------------------

export const StartPayload = Schema.Struct({
  query: Query,
  context: Schema.optionalKey(JsonObject.annotate({ description: "Application data the run may use" })),
  mode: Mode
}).annotate({ identifier: "AgentStartPayloadV2" })
export type StartPayload = typeof StartPayload.Type

/** `channel` is where the run's events are published; subscribe to it to follow the run. */
export const StartResult = Schema.Struct({ runId: RunId, channel: ChannelName }).annotate({
  identifier: "AgentStartResultV2"
})
export type StartResult = typeof StartResult.Type

export const StartError = Schema.Union([InvalidQuery, RunLimitReached, ModeUnavailable]).pipe(
  Schema.toTaggedUnion("_tag")
)
export type StartError = typeof StartError.Type

// ---- cancel ----------------------------------------------------------------------------------------------------

export const CancelPayload = Schema.Struct({
  runId: RunId,
  reason: Schema.optionalKey(Message)
}).annotate({ identifier: "AgentCancelPayloadV2" })
export type CancelPayload = typeof CancelPayload.Type

/** `already_finished`: the run had ended before the cancel arrived, so nothing was cancelled. */
export const CancelResult = Schema.Struct({
  outcome: Schema.Literals(["cancelled", "already_finished"])
}).annotate({ identifier: "AgentCancelResultV2" })
export type CancelResult = typeof CancelResult.Type

export const CancelError = Schema.Union([RunNotFound, NotRunOwner]).pipe(Schema.toTaggedUnion("_tag"))
export type CancelError = typeof CancelError.Type

// ---- feedback --------------------------------------------------------------------------------------------------

export const StepTarget = Schema.Struct({ kind: Schema.tag("step"), stepId: StepId })
export const QuestionTarget = Schema.Struct({ kind: Schema.tag("question"), question: Message })

/** What a feedback answers: the checkpoint of a step, or a question the agent asked. */
export const FeedbackTarget = Schema.Union([StepTarget, QuestionTarget])
  .pipe(Schema.toTaggedUnion("kind"))
  .annotate({ identifier: "AgentFeedbackTarget" })
export type FeedbackTarget = typeof FeedbackTarget.Type

export const FeedbackPayload = Schema.Struct({
  runId: RunId,
  target: FeedbackTarget,
  answer: Json.annotate({ description: "The decision; a v1 client always sends a string" })
}).annotate({ identifier: "AgentFeedbackPayloadV2" })
export type FeedbackPayload = typeof FeedbackPayload.Type

export const FeedbackError = Schema.Union([RunNotFound, NotRunOwner, CheckpointNotPending, QuestionNotPending]).pipe(
  Schema.toTaggedUnion("_tag")
)
export type FeedbackError = typeof FeedbackError.Type

/** Every v2 command: wire name → payload, result and error schemas. */
export const commands = {
  start: command({ payload: StartPayload, result: StartResult, error: StartError }),
  cancel: command({ payload: CancelPayload, result: CancelResult, error: CancelError }),
  feedback: command({ payload: FeedbackPayload, result: FeedbackResult, error: FeedbackError })
}
