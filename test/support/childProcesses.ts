/**
 * Server processes a test support module started, and their end: `track` registers a child so that it is killed
 * (SIGCONT first, in case a test froze it, then SIGKILL) when the test process exits, and forgets it once it has
 * exited; `hasExited` and `exitOf` tell whether and when it ended; `spawnUntilReady` starts one and waits for the line
 * that says it is ready.
 */
import { type ChildProcess, spawn } from "node:child_process"

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

/** A started child, what it printed so far (its last 20 kB), and its readiness. */
export interface Started {
  readonly child: ChildProcess
  readonly log: () => string
  /**
   * Resolves once stdout or stderr showed the ready line; rejects with the output on an exit, a spawn error or the
   * timeout (killing the child then).
   */
  readonly ready: Promise<void>
}

/** Spawns `command` (tracked) and watches its output for `readyLine`; `label` names it in the errors. */
export const spawnUntilReady = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly label: string; readonly readyLine: string; readonly readyTimeoutMs: number }
): Started => {
  const { label, readyLine, readyTimeoutMs } = options
  const child = spawn(command, [...args], { stdio: ["ignore", "pipe", "pipe"] })
  track(child)
  let log = ""
  const ready = new Promise<void>((resolve, reject) => {
    let settled = false
    const settle = (error?: Error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (error === undefined) return resolve()
      child.kill("SIGKILL")
      reject(error)
    }
    const timer = setTimeout(
      () => settle(new Error(`${label} not ready after ${readyTimeoutMs} ms:\n${log}`)),
      readyTimeoutMs
    )
    const onData = (chunk: Buffer) => {
      log = (log + chunk.toString()).slice(-20_000)
      if (log.includes(readyLine)) settle()
    }
    child.stdout?.on("data", onData)
    child.stderr?.on("data", onData)
    child.once("error", (error) => settle(error))
    child.once("exit", (code, signal) => settle(new Error(`${label} exited (${code ?? signal}) before ready:\n${log}`)))
  })
  return { child, log: () => log, ready }
}
