/**
 * Server processes a test support module started, and their end: `track` registers a child so that it is killed
 * (SIGCONT first, in case a test froze it, then SIGKILL) when the test process exits, and forgets it once it has
 * exited; `hasExited` and `exitOf` tell whether and when it ended.
 */
import type { ChildProcess } from "node:child_process"

const live = new Set<ChildProcess>()
let hooked = false

export const hasExited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null

/** Resolves once the child has exited (at once if it has). */
export const exitOf = (child: ChildProcess): Promise<void> =>
  hasExited(child) ? Promise.resolve() : new Promise((resolve) => child.once("exit", () => resolve()))

export const track = (child: ChildProcess): void => {
  if (!hooked) {
    hooked = true
    process.on("exit", () => {
      for (const running of live) {
        running.kill("SIGCONT")
        running.kill("SIGKILL")
      }
    })
  }
  live.add(child)
  child.once("exit", () => live.delete(child))
}
