/**
 * The page's model of one run — what the console shows — derived from the run channel's events by a pure
 * reducer. Saved together with the position of the last event applied (SavedRun.ts), it is what lets a reload
 * resume exactly where the page was: the server replays from that position, so no event is applied twice and
 * none is skipped. No DOM here (Render.ts), no socket (main.ts).
 */
import type { ResetNotice } from "../../../src/client/index.ts"
import { type AgentEvent, screenshotToDataUrl } from "../../../src/protocol/agent/index.ts"

/** A step's status as the agent reports it, plus `stopped`: it was running when the run ended. */
export type StepStatus = "pending" | "running" | "completed" | "failed" | "skipped" | "stopped"

export interface StepRow {
  readonly id: string
  readonly number: number
  readonly status: StepStatus
  readonly action: string
  readonly explanation: string
  /** Every status the agent reported for this step, in order; a repeated or missed event would show here. */
  readonly transitions: ReadonlyArray<string>
}

/** How the run ended; `lost` when the server no longer has it (its log was lost with a restart). */
export interface Outcome {
  readonly kind: "succeeded" | "failed" | "cancelled" | "lost"
  readonly text: string
}

export interface RunView {
  readonly runId: string
  readonly channel: string
  /** Who started it: this page, or a backend over HTTP. */
  readonly startedBy: "you" | "backend"
  readonly phase: string
  readonly detail: string
  readonly message: string
  readonly messageDone: boolean
  readonly steps: ReadonlyArray<StepRow>
  readonly totalSteps: number | undefined
  /** Overall progress in percent, from `execution_update`. */
  readonly progress: number
  /** The long task's latest word (`task_progress`), shown under the progress bar. */
  readonly task: string
  /** The latest screenshot as a data URL. */
  readonly screenshot: string | undefined
  readonly browserUrl: string | undefined
  readonly checkpoint: { readonly stepId: string; readonly question: string } | undefined
  readonly outcome: Outcome | undefined
  /** The server said this page's position is from a stream it no longer has; set after the run ended. */
  readonly historyLost: boolean
}

export const initial = (runId: string, channel: string, startedBy: RunView["startedBy"]): RunView => ({
  runId,
  channel,
  startedBy,
  phase: "queued",
  detail: "",
  message: "",
  messageDone: false,
  steps: [],
  totalSteps: undefined,
  progress: 0,
  task: "",
  screenshot: undefined,
  browserUrl: undefined,
  checkpoint: undefined,
  outcome: undefined,
  historyLost: false
})

const question = (data: unknown): string =>
  typeof data === "object" && data !== null && "question" in data && typeof data.question === "string"
    ? data.question
    : "The agent asks for your approval to continue."

/** Steps still running when the run ended did not finish. */
const stopRunning = (steps: ReadonlyArray<StepRow>): ReadonlyArray<StepRow> =>
  steps.map((step) => (step.status === "running" ? { ...step, status: "stopped" } : step))

const upsertStep = (steps: ReadonlyArray<StepRow>, update: Extract<AgentEvent, { event: "step_update" }>["data"]) => {
  const existing = steps.find((step) => step.id === update.step.id)
  const row: StepRow = {
    id: update.step.id,
    number: update.step.number,
    status: update.status,
    action: update.action,
    explanation: update.explanation,
    transitions: [...(existing?.transitions ?? []), update.status]
  }
  const others = steps.filter((step) => step.id !== row.id)
  return [...others, row].sort((a, b) => a.number - b.number)
}

/** The view after one event of the run's channel. */
export const apply = (view: RunView, event: AgentEvent): RunView => {
  switch (event.event) {
    case "status":
      return { ...view, phase: event.data.phase, detail: event.data.detail ?? "" }
    case "message_chunk":
      if (event.data.role !== "assistant") return view
      // a restarted message (its step ran again after a crash) replaces what was shown
      return {
        ...view,
        message: (event.data.restart ? "" : view.message) + event.data.text,
        messageDone: event.data.done
      }
    case "step_update":
      return {
        ...view,
        steps: upsertStep(view.steps, event.data),
        screenshot: event.data.screenshot ? screenshotToDataUrl(event.data.screenshot) : view.screenshot
      }
    case "browser_update":
      return { ...view, screenshot: screenshotToDataUrl(event.data.screenshot), browserUrl: event.data.url }
    case "execution_update": {
      const ended = event.data.status === "cancelled" || event.data.status === "failed"
      return {
        ...view,
        // a stopped run reports no progress; keep what it had reached
        progress: ended ? view.progress : event.data.progress,
        totalSteps: event.data.totalSteps ?? view.totalSteps
      }
    }
    case "task_progress":
      return { ...view, task: event.data.message }
    case "checkpoint_required":
      return { ...view, checkpoint: { stepId: event.data.stepId, question: question(event.data.data) } }
    case "checkpoint_resolved":
      return view.checkpoint?.stepId === event.data.stepId ? { ...view, checkpoint: undefined } : view
    case "completion": {
      const ended = { ...view, checkpoint: undefined, phase: "idle", detail: "" }
      switch (event.data.outcome) {
        case "succeeded":
          return { ...ended, progress: 100, outcome: { kind: "succeeded", text: "Run finished" } }
        case "failed":
          return {
            ...ended,
            steps: stopRunning(view.steps),
            outcome: { kind: "failed", text: `Run failed: ${event.data.error.message}` }
          }
        case "cancelled":
          return {
            ...ended,
            steps: stopRunning(view.steps),
            outcome: { kind: "cancelled", text: `Run cancelled: ${event.data.reason ?? "no reason given"}` }
          }
      }
      return ended
    }
    default:
      // browser_command, notification, error, user_activity, usage: nothing to keep (main.ts toasts some)
      return view
  }
}

/**
 * The server could not resume this page's position. A new epoch (or a position it never issued) means the
 * channel's log was lost — with the in-memory transport, by a server restart, and the run with it. Trimmed means
 * older events are gone but the run may go on.
 */
export const reset = (view: RunView, reason: ResetNotice["reason"]): RunView => {
  if (reason === "trimmed") return { ...view, historyLost: true }
  if (view.outcome !== undefined) return { ...view, historyLost: true }
  return {
    ...view,
    checkpoint: undefined,
    phase: "idle",
    detail: "",
    steps: stopRunning(view.steps),
    outcome: {
      kind: "lost",
      text: "Run lost: the server restarted and no longer has this run (its log and its agent lived in the old process). Start a new run."
    }
  }
}
