/**
 * The agent-console example server (examples/agent-console/server.ts) in a child process, as a user runs it,
 * so that a test can stop it (gracefully or by SIGKILL) and start it again on the same port. Ready means it
 * printed its URL. Its output is kept for failure messages. `stopAllExampleServers` (in `afterAll`) and an exit
 * hook make sure a failed test leaves no process behind.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { freePort } from "../../support/freePort.ts"

export interface ExampleServer {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string
  readonly port: number
  /** SIGTERM (what Ctrl-C does): the server shuts down gracefully; resolves when the process has exited. */
  readonly stop: () => Promise<void>
  /** SIGKILL, as a crash. */
  readonly kill: () => Promise<void>
  /** Starts the process again on the same port; resolves when it serves. */
  readonly start: () => Promise<void>
  /** The last few KB of its stdout and stderr. */
  readonly output: () => string
}

const live = new Set<ChildProcess>()
let exitHookInstalled = false
const started = new Set<ExampleServer>()

/** Stops every example server this process started and has not stopped (for `afterAll`). */
export const stopAllExampleServers = async (): Promise<void> => {
  await Promise.all([...started].map((server) => server.stop()))
}

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once("exit", () => resolve()))

export const startExampleServer = async (env: Record<string, string> = {}): Promise<ExampleServer> => {
  if (!exitHookInstalled) {
    exitHookInstalled = true
    process.on("exit", () => {
      for (const child of live) child.kill("SIGKILL")
    })
  }
  const port = await freePort() // below the ephemeral range: a restart finds it free (freePort.ts)
  let child: ChildProcess | undefined
  let output = ""

  const launch = () =>
    new Promise<void>((resolve, reject) => {
      let fresh = "" // this launch's output: the URL line of an earlier one must not count
      const spawned = spawn(process.execPath, ["--import", "tsx", "examples/agent-console/server.ts"], {
        env: { ...process.env, AGENT_CONSOLE_HOST: "127.0.0.1", AGENT_CONSOLE_PORT: String(port), ...env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      child = spawned
      live.add(spawned)
      const timer = setTimeout(() => {
        spawned.kill("SIGKILL")
        reject(new Error(`the example server did not start within 40 s:\n${output}`))
      }, 40_000)
      const collect = (chunk: Buffer) => {
        output = (output + chunk.toString()).slice(-8000)
        fresh = (fresh + chunk.toString()).slice(-8000)
        if (fresh.includes(`agent console: http://127.0.0.1:${port}/`)) {
          clearTimeout(timer)
          resolve()
        }
      }
      spawned.stdout?.on("data", collect)
      spawned.stderr?.on("data", collect)
      spawned.once("exit", (code, signal) => {
        live.delete(spawned)
        clearTimeout(timer)
        reject(new Error(`the example server exited (${code ?? signal}) before serving:\n${fresh}`))
      })
    })

  /** Launches, trying again for a few seconds while the port is still held (a socket of the last run closing). */
  const start = async (): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await launch()
      } catch (error) {
        if (attempt >= 10 || !String(error).includes("EADDRINUSE")) throw error
        await new Promise((resolve) => setTimeout(resolve, 300))
      }
    }
  }

  const signal = async (name: NodeJS.Signals) => {
    const current = child
    if (current === undefined) return
    const gone = exited(current)
    current.kill(name)
    // a graceful stop takes well under a second; one that hangs is a bug to see, not to wait on
    const stuck = setTimeout(() => current.kill("SIGKILL"), 10_000)
    await gone
    clearTimeout(stuck)
    child = undefined
  }

  await start()
  const server: ExampleServer = {
    url: `http://127.0.0.1:${port}/`,
    port,
    stop: () => signal("SIGTERM"),
    kill: () => signal("SIGKILL"),
    start,
    output: () => output
  }
  started.add(server)
  return server
}
