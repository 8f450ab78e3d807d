/**
 * The migration between agent protocol v1 and v2: v2 events down to v1 clients, v1 commands up to the v2
 * handlers, and v2 replies back down to v1 callers.
 *
 * Every function here is total and pure: it works on decoded values, never fails, and always yields a value the
 * older (or newer) schema accepts, clipping texts where v2 allows more than v1. What v1 cannot express is said
 * in the doc of each case, so that the table in the docs can be written from this file alone.
 */
import type { Migration } from "../Protocol.ts"
import { MAX_MESSAGE_LENGTH, screenshotToDataUrl } from "./fields.ts"
import type * as V1Commands from "./v1/commands.ts"
import type * as V1Events from "./v1/events.ts"
import type { AgentV1 } from "./v1/version.ts"
import type * as V2Commands from "./v2/commands.ts"
import type * as V2Events from "./v2/events.ts"
import type { AgentV2 } from "./v2/version.ts"

/** The mode a v1 `start` runs in: v1 had a single all-purpose agent, which is what `auto` chooses. */
export const V1_START_MODE = "auto"

const clip = (text: string, max: number): string => (text.length <= max ? text : text.slice(0, max))

/** v2 phases that v1 lacks become the closest v1 phase. */
const phaseDown: Record<V2Events.Phase, V1Events.Phase> = {
  idle: "idle",
  thinking: "thinking",
  searching: "searching",
  scraping: "scraping",
  browsing: "browsing",
  processing: "processing",
  retrieving: "searching",
  installing: "processing",
  waiting_for_input: "idle"
}

/** v2 renamed two execution states. */
const executionStatusDown: Record<V2Events.ExecutionStatus, V1Events.ExecutionStatus> = {
  queued: "pending",
  running: "running",
  awaiting_input: "paused",
  completed: "completed",
  failed: "failed",
  cancelled: "cancelled"
}

/** Percent (v2) to fraction (v1); exact at 0 and 100, and never above 1. */
const fractionOf = (percent: number): number => percent / 100

const completionDown = (completion: V2Events.Completion): V1Events.Completion => {
  switch (completion.outcome) {
    case "succeeded":
      return { success: true, result: completion.result }
    case "failed":
      return {
        success: false,
        error: clip(`${completion.error.code}: ${completion.error.message}`, MAX_MESSAGE_LENGTH)
      }
    case "cancelled":
      // v1 had no cancelled outcome: a cancelled run was a failed run whose error says so.
      return {
        success: false,
        error: clip(
          completion.reason === undefined ? "cancelled" : `cancelled: ${completion.reason}`,
          MAX_MESSAGE_LENGTH
        )
      }
  }
}

const stepUpdateDown = (update: V2Events.StepUpdate): V1Events.StepUpdate => ({
  executionId: update.executionId,
  stepId: update.step.id,
  stepNumber: update.step.number,
  status: update.status,
  action: update.action,
  explanation: update.explanation,
  ...(update.result === undefined ? {} : { result: update.result }),
  ...(update.screenshot === undefined ? {} : { screenshot: screenshotToDataUrl(update.screenshot) })
})

const startErrorDown = (error: V2Commands.StartError): V1Commands.StartError => {
  switch (error._tag) {
    case "InvalidQuery":
      return error
    case "RunLimitReached":
      return { _tag: "RunLimitReached", limit: error.limit }
    case "ModeUnavailable":
      // Only reachable if `auto` itself is switched off; v1 can only report it as a refused query.
      return { _tag: "InvalidQuery", reason: `mode "${error.mode}" is not available on this server` }
  }
}

const feedbackErrorDown = (error: V2Commands.FeedbackError): V1Commands.FeedbackError => {
  switch (error._tag) {
    case "NotRunOwner":
      // As for cancel: v1 callers learn only that there is no such run for them.
      return { _tag: "RunNotFound", runId: error.runId }
    case "RunNotFound":
    case "CheckpointNotPending":
    case "QuestionNotPending":
      return error
  }
}

export const migration: Migration<AgentV1, AgentV2> = {
  eventDown: (event) => {
    switch (event.event) {
      case "message_chunk": {
        // v1 cannot say that a message starts over: its clients append the restarted text to what they had
        const { restart: _restart, ...chunk } = event.data
        return { event: "message_chunk", data: chunk }
      }
      case "browser_command":
      case "notification":
      case "checkpoint_required":
      case "user_activity":
        return event
      case "status":
        return { event: "status", data: { phase: phaseDown[event.data.phase], detail: event.data.detail ?? "" } }
      case "error": {
        const { code, message, stepId } = event.data
        return { event: "error", data: { code, message, ...(stepId === undefined ? {} : { step: stepId }) } }
      }
      case "execution_update": {
        const { executionId, status, currentStep, progress } = event.data
        return {
          event: "execution_update",
          data: { executionId, status: executionStatusDown[status], currentStep, progress: fractionOf(progress) }
        }
      }
      case "step_update":
        return { event: "step_update", data: stepUpdateDown(event.data) }
      case "browser_update": {
        const { sessionId, screenshot, url } = event.data
        return { event: "browser_update", data: { sessionId, screenshot: screenshotToDataUrl(screenshot), url } }
      }
      case "task_progress": {
        const { stage, progress, message } = event.data
        return { event: "task_progress", data: { stage, progress: fractionOf(progress), message } }
      }
      case "completion":
        return { event: "completion", data: completionDown(event.data) }
      case "checkpoint_resolved":
        // v1 clients keep their prompt open otherwise; a notification at least tells them it was answered.
        return {
          event: "notification",
          data: {
            level: "info",
            title: "Checkpoint resolved",
            message: clip(`Step ${event.data.stepId} was resolved by ${event.data.by}.`, MAX_MESSAGE_LENGTH)
          }
        }
      case "usage":
        // Accounting data v1 clients never showed: not sent to them.
        return undefined
    }
  },

  commandUp: (command) => {
    switch (command.name) {
      case "start":
        return { name: "start", payload: { ...command.payload, mode: V1_START_MODE } }
      case "cancel":
        return { name: "cancel", payload: { runId: command.payload.runId } }
      case "feedback": {
        const payload = command.payload
        return {
          name: "feedback",
          payload:
            "stepId" in payload
              ? { runId: payload.runId, target: { kind: "step", stepId: payload.stepId }, answer: payload.answer }
              : {
                  runId: payload.runId,
                  target: { kind: "question", question: payload.question },
                  answer: payload.answer
                }
        }
      }
    }
  },

  replyDown: (reply) => {
    switch (reply.name) {
      case "start":
        return reply.ok
          ? { name: "start", ok: true, result: { runId: reply.result.runId } }
          : { name: "start", ok: false, error: startErrorDown(reply.error) }
      case "cancel":
        return reply.ok
          ? { name: "cancel", ok: true, result: { cancelled: reply.result.outcome === "cancelled" } }
          : // v1 never told "not yours" from "does not exist"; neither does the migrated reply.
            { name: "cancel", ok: false, error: { _tag: "RunNotFound", runId: reply.error.runId } }
      case "feedback":
        return reply.ok ? reply : { name: "feedback", ok: false, error: feedbackErrorDown(reply.error) }
    }
  }
}
