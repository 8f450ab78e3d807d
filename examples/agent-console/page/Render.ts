/**
 * Draws the page from state: the run view, the connection badge, the user. Each function sets the DOM to match
 * its argument, so calling it again with the same state changes nothing and the order of calls does not
 * matter. The markup it fills is in index.html; what the state means is RunView.ts'.
 */
import type { ClientState } from "../../../src/client/index.ts"
import type { RunView, StepStatus } from "./RunView.ts"

const byId = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const element = document.getElementById(id)
  if (!element) throw new Error(`index.html has no #${id}`)
  return element as T
}

const icons: Record<StepStatus, string> = {
  pending: "○",
  running: "◐",
  completed: "✓",
  failed: "✗",
  skipped: "↷",
  stopped: "■"
}

/** What the badge says; `offline` also covers a browser without a network. */
export type Connection = ClientState | "offline"

const badgeText: Record<Connection, string> = {
  connecting: "connecting…",
  open: "connected",
  reconnecting: "reconnecting…",
  closed: "offline",
  offline: "offline"
}

export const renderBadge = (state: Connection): void => {
  const badge = byId("badge")
  badge.dataset.state = state === "closed" ? "offline" : state
  badge.textContent = badgeText[state]
}

export const renderUser = (user: string | null): void => {
  byId("user").textContent = user ?? "anonymous"
}

const stepRow = (step: RunView["steps"][number]): HTMLLIElement => {
  const row = document.createElement("li")
  row.dataset.stepId = step.id
  row.dataset.status = step.status
  row.dataset.transitions = step.transitions.join(",")
  const icon = document.createElement("span")
  icon.className = `icon icon-${step.status}`
  icon.textContent = icons[step.status]
  icon.title = step.status
  const action = document.createElement("strong")
  action.textContent = step.action
  const explanation = document.createElement("span")
  explanation.className = "explanation"
  explanation.textContent = step.explanation
  row.append(icon, action, explanation)
  return row
}

export const renderRun = (view: RunView | undefined, busy: boolean): void => {
  const section = byId("run")
  byId<HTMLButtonElement>("start").disabled = busy || (view !== undefined && view.outcome === undefined)
  if (!view) {
    section.hidden = true
    return
  }
  section.hidden = false
  section.dataset.runId = view.runId
  byId("run-id").textContent = view.runId
  byId("run-origin").textContent = view.startedBy === "backend" ? "started by a backend" : "started here"
  const phase = view.phase.replaceAll("_", " ")
  byId("phase").textContent = view.outcome ? "" : view.detail ? `${phase} · ${view.detail}` : phase
  byId<HTMLButtonElement>("cancel").disabled = view.outcome !== undefined

  const outcome = byId("outcome")
  outcome.hidden = view.outcome === undefined
  outcome.dataset.kind = view.outcome?.kind ?? ""
  outcome.textContent = view.outcome?.text ?? ""
  byId("history-lost").hidden = !view.historyLost

  const bar = byId("progress-bar")
  bar.style.width = `${view.progress}%`
  bar.dataset.ended = view.outcome?.kind ?? ""
  byId("progress").setAttribute("aria-valuenow", String(Math.round(view.progress)))
  byId("progress-label").textContent = `${Math.round(view.progress)}%`
  byId("task").textContent = view.task

  const checkpoint = byId("checkpoint")
  checkpoint.hidden = view.checkpoint === undefined
  checkpoint.dataset.stepId = view.checkpoint?.stepId ?? ""
  byId("checkpoint-question").textContent = view.checkpoint?.question ?? ""

  const message = byId("message")
  message.textContent = view.message
  message.dataset.done = String(view.messageDone)

  const screenshot = byId<HTMLImageElement>("screenshot")
  screenshot.hidden = view.screenshot === undefined
  if (view.screenshot !== undefined && screenshot.getAttribute("src") !== view.screenshot) {
    screenshot.src = view.screenshot
  }
  byId("browser-url").textContent = view.browserUrl ?? ""

  byId("steps").replaceChildren(...view.steps.map(stepRow))
}

/** Disables the checkpoint buttons while an answer is on its way. */
export const renderAnswering = (answering: boolean): void => {
  byId<HTMLButtonElement>("approve").disabled = answering
  byId<HTMLButtonElement>("reject").disabled = answering
}
