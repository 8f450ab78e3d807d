/**
 * The commands of agent protocol v1 (client → server): payload, result and error schemas of `start`,
 * `cancel` and `feedback`.
 *
 * Errors are plain tagged structs (`{ "_tag": "RunNotFound", ... }`) so that every language can switch on
 * `_tag`. Schemas that v2 kept unchanged are re-exported by v2/commands.ts.
 */
import { Schema } from "effect"
import { command } from "../../Protocol.ts"
import { Count, JsonObject, MAX_MESSAGE_LENGTH, MAX_TEXT_LENGTH, Message, RunId, StepId } from "../fields.ts"

// ---- errors ----------------------------------------------------------------------------------------------------

/** The run does not exist (or is not visible to the caller). Check the run id returned by `start`. */
export const RunNotFound = Schema.TaggedStruct("RunNotFound", { runId: RunId }).annotate({
  identifier: "AgentRunNotFound"
})
export type RunNotFound = typeof RunNotFound.Type

/** The query was refused; `reason` says why, for the user to rephrase. */
export const InvalidQuery = Schema.TaggedStruct("InvalidQuery", { reason: Message }).annotate({
  identifier: "AgentInvalidQuery"
})
export type InvalidQuery = typeof InvalidQuery.Type

/** The caller already has `limit` runs going; cancel one or wait for one to finish. */
export const RunLimitReached = Schema.TaggedStruct("RunLimitReached", { limit: Count }).annotate({
  identifier: "AgentRunLimitReachedV1"
})
export type RunLimitReached = typeof RunLimitReached.Type

/** No checkpoint is waiting at that step (never raised, already answered, or timed out). */
export const CheckpointNotPending = Schema.TaggedStruct("CheckpointNotPending", {
  runId: RunId,
  stepId: StepId
}).annotate({ identifier: "AgentCheckpointNotPending" })
export type CheckpointNotPending = typeof CheckpointNotPending.Type

/** The run is not waiting for an answer to that question. */
export const QuestionNotPending = Schema.TaggedStruct("QuestionNotPending", {
  runId: RunId,
  question: Message
}).annotate({ identifier: "AgentQuestionNotPending" })
export type QuestionNotPending = typeof QuestionNotPending.Type

// ---- start -----------------------------------------------------------------------------------------------------

export const Query = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(MAX_TEXT_LENGTH)).annotate({
  description: "What the user asks the agent to do"
})

export const StartPayload = Schema.Struct({
  query: Query,
  context: Schema.optionalKey(JsonObject.annotate({ description: "Application data the run may use" }))
}).annotate({ identifier: "AgentStartPayloadV1" })
export type StartPayload = typeof StartPayload.Type

export const StartResult = Schema.Struct({ runId: RunId }).annotate({ identifier: "AgentStartResultV1" })
export type StartResult = typeof StartResult.Type

export const StartError = Schema.Union([InvalidQuery, RunLimitReached]).pipe(Schema.toTaggedUnion("_tag"))
export type StartError = typeof StartError.Type

// ---- cancel ----------------------------------------------------------------------------------------------------

export const CancelPayload = Schema.Struct({ runId: RunId }).annotate({ identifier: "AgentCancelPayloadV1" })
export type CancelPayload = typeof CancelPayload.Type

/** `cancelled` is false when the run had already finished. */
export const CancelResult = Schema.Struct({ cancelled: Schema.Boolean }).annotate({
  identifier: "AgentCancelResultV1"
})
export type CancelResult = typeof CancelResult.Type

export const CancelError = Schema.Union([RunNotFound]).pipe(Schema.toTaggedUnion("_tag"))
export type CancelError = typeof CancelError.Type

// ---- feedback --------------------------------------------------------------------------------------------------

const Answer = Schema.String.check(Schema.isMaxLength(MAX_TEXT_LENGTH))

/** Resolves the checkpoint raised at `stepId`. */
export const StepFeedback = Schema.Struct({ runId: RunId, stepId: StepId, answer: Answer })
/** Answers the question the agent asked, identified by its text (at most {@link MAX_MESSAGE_LENGTH}). */
export const QuestionFeedback = Schema.Struct({ runId: RunId, question: Message, answer: Answer })

/** v1 feedback carries exactly one of `stepId` or `question`; v2 made this a `target` with a `kind`. */
export const FeedbackPayload = Schema.Union([StepFeedback, QuestionFeedback]).annotate({
  identifier: "AgentFeedbackPayloadV1"
})
export type FeedbackPayload = typeof FeedbackPayload.Type

/** `resumed` is true when the answer let the run continue at once. */
export const FeedbackResult = Schema.Struct({ resumed: Schema.Boolean }).annotate({
  identifier: "AgentFeedbackResult"
})
export type FeedbackResult = typeof FeedbackResult.Type

export const FeedbackError = Schema.Union([RunNotFound, CheckpointNotPending, QuestionNotPending]).pipe(
  Schema.toTaggedUnion("_tag")
)
export type FeedbackError = typeof FeedbackError.Type

/** Every v1 command: wire name → payload, result and error schemas. */
export const commands = {
  start: command({ payload: StartPayload, result: StartResult, error: StartError }),
  cancel: command({ payload: CancelPayload, result: CancelResult, error: CancelError }),
  feedback: command({ payload: FeedbackPayload, result: FeedbackResult, error: FeedbackError })
}
