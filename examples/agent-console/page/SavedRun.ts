/**
 * What survives a reload: the run this tab follows (its view, and the position of the last event that view
 * includes, written together so they can never disagree) and the position reached on the user's personal
 * channel. sessionStorage, so each tab follows its own run and a closed tab forgets it.
 *
 * Positions come from the server (`meta` of a delivered event, or a `reset`); the page never makes one up.
 */
import type { Position } from "../../../src/protocol/index.ts"
import type { RunView } from "./RunView.ts"

export interface SavedRun {
  readonly view: RunView
  /** The last event applied to `view`; undefined before the first, then the page replays from the start. */
  readonly position: Position | undefined
}

const RUN_KEY = "agent-console/run"
const USER_KEY = "agent-console/user-position"

const isPosition = (value: unknown): value is Position =>
  typeof value === "object" &&
  value !== null &&
  typeof (value as Position).epoch === "string" &&
  typeof (value as Position).offset === "number"

const read = (key: string): unknown => {
  try {
    return JSON.parse(sessionStorage.getItem(key) ?? "null")
  } catch {
    return null
  }
}

/** The saved run, if there is one written by this page's shape of RunView. */
export const load = (): SavedRun | undefined => {
  const saved = read(RUN_KEY) as { view?: Partial<RunView>; position?: unknown } | null
  if (!saved?.view || typeof saved.view.runId !== "string" || typeof saved.view.channel !== "string") return undefined
  if (!Array.isArray(saved.view.steps)) return undefined
  return { view: saved.view as RunView, position: isPosition(saved.position) ? saved.position : undefined }
}

export const save = (run: SavedRun): void => sessionStorage.setItem(RUN_KEY, JSON.stringify(run))

export const loadUserPosition = (): Position | undefined => {
  const position = read(USER_KEY)
  return isPosition(position) ? position : undefined
}

export const saveUserPosition = (position: Position): void =>
  sessionStorage.setItem(USER_KEY, JSON.stringify({ epoch: position.epoch, offset: position.offset }))
