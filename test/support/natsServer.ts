/**
 * Starts a private `nats-server -js` for tests and benchmarks: a free port on 127.0.0.1, its own temporary store
 * directory (`-sd`), readiness awaited from the server's log. Fault tests use `stop` / `kill` / `restart` (same
 * port, same store directory, so streams survive a restart). It never touches a system NATS on 4222. Finding the
 * binary (and skipping when it is missing) is left to requireBinary.ts.
 */
import type { ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { exitOf, hasExited, spawnUntilReady } from "./childProcesses.ts"
import { freePort } from "./freePort.ts"

export interface NatsServer {
  /** `nats://127.0.0.1:<port>` */
  readonly url: string
  readonly port: number
  readonly storeDir: string
  /** Whether the process is running now. */
  readonly running: () => boolean
  /** Stops the process gracefully (SIGTERM) and waits for it to exit; the store directory is kept. */
  readonly stop: () => Promise<void>
  /** Kills the process (SIGKILL) and waits for it to exit; the store directory is kept. */
  readonly kill: () => Promise<void>
  /** Starts the process again on the same port with the same store directory (stops it first if running). */
  readonly restart: () => Promise<void>
  /** Stops the process and deletes the store directory. */
  readonly close: () => Promise<void>
}

export interface NatsServerOptions {
  /** Path of the nats-server binary (default "nats-server"). */
  readonly binary?: string
  /** How long to wait for "Server is ready" (default 15 s). */
  readonly readyTimeoutMs?: number
}

export const startNatsServer = async (options: NatsServerOptions = {}): Promise<NatsServer> => {
  const binary = options.binary ?? "nats-server"
  const readyTimeoutMs = options.readyTimeoutMs ?? 15_000
  const port = await freePort()
  const storeDir = mkdtempSync(join(tmpdir(), "tidings-nats-"))
  let child: ChildProcess | undefined

  const spawnServer = (): Promise<void> => {
    const started = spawnUntilReady(binary, ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir], {
      label: `nats-server on port ${port}`,
      readyLine: "Server is ready",
      readyTimeoutMs
    })
    child = started.child
    return started.ready
  }

  const signal = async (name: NodeJS.Signals) => {
    const proc = child
    if (!proc || hasExited(proc)) return
    const exited = exitOf(proc)
    proc.kill(name)
    await exited
  }
  const running = () => child !== undefined && !hasExited(child)

  try {
    await spawnServer()
  } catch (error) {
    rmSync(storeDir, { recursive: true, force: true })
    throw error
  }

  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    running,
    stop: () => signal("SIGTERM"),
    kill: () => signal("SIGKILL"),
    restart: async () => {
      await signal("SIGTERM")
      await spawnServer()
    },
    close: async () => {
      await signal("SIGTERM")
      rmSync(storeDir, { recursive: true, force: true })
    }
  }
}
