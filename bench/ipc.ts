/**
 * The message protocol between the orchestrator (bench/run.ts) and its child processes (servers under test,
 * load-generator workers), and the child's side of it: answer calls by name, send events, exit when the
 * orchestrator goes away or a hard deadline passes (a child never outlives its run). The parent's side is
 * child.ts.
 */

export type ToChild =
  | { readonly type: "call"; readonly id: number; readonly op: string; readonly args: unknown }
  | { readonly type: "notify"; readonly op: string; readonly args: unknown }

export type FromChild =
  | { readonly type: "ready"; readonly info: unknown }
  | { readonly type: "result"; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly type: "result"; readonly id: number; readonly ok: false; readonly error: string }
  | { readonly type: "event"; readonly name: string; readonly data: unknown }

// biome-ignore lint/suspicious/noExplicitAny: handlers receive the args their caller sent, typed at the call site
export type Handlers = Record<string, (args: any) => unknown>

const send = (message: FromChild): void => {
  if (process.send && process.connected) process.send(message)
}

/** Sends an unsolicited event to the orchestrator. */
export const emit = (name: string, data: unknown): void => send({ type: "event", name, data })

/**
 * Serves calls from the orchestrator. `deadlineMs` is a hard stop: whatever happens, the process exits then.
 * `onExit` runs before a requested or forced exit (write a CPU profile, close sockets).
 */
export const serve = (handlers: Handlers, info: unknown, deadlineMs: number, onExit?: () => Promise<void>): void => {
  if (!process.send) throw new Error("this script is a bench child process: run it through bench/run.ts")
  let exiting = false
  const exit = (code: number) => {
    if (exiting) return
    exiting = true
    const done = () => process.exit(code)
    setTimeout(done, 3000).unref()
    ;(onExit ? onExit() : Promise.resolve()).then(done, done)
  }
  setTimeout(() => {
    process.stderr.write(`bench child ${process.pid}: deadline of ${deadlineMs} ms reached, exiting\n`)
    exit(3)
  }, deadlineMs).unref()
  process.on("disconnect", () => exit(0))
  process.on("message", (raw: ToChild) => {
    // a server process of a group (primary.ts) also hears its supervisor's messages: they are not for us
    if (raw?.type !== "call" && raw?.type !== "notify") return
    if (raw.op === "exit") return exit(0)
    const handler = handlers[raw.op]
    if (raw.type === "notify") {
      handler?.(raw.args)
      return
    }
    if (!handler) return send({ type: "result", id: raw.id, ok: false, error: `unknown op ${raw.op}` })
    Promise.resolve()
      .then(() => handler(raw.args))
      .then(
        (value) => send({ type: "result", id: raw.id, ok: true, value: value ?? null }),
        (error: unknown) =>
          send({
            type: "result",
            id: raw.id,
            ok: false,
            error: error instanceof Error ? (error.stack ?? error.message) : String(error)
          })
      )
  })
  send({ type: "ready", info })
}

/** Reads `--name value` flags of a child's command line. */
export const flag = (name: string, fallback?: string): string | undefined => {
  const at = process.argv.indexOf(`--${name}`)
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback
}
