/**
 * Tidings server processes for the cluster tests: spawn one (the test node, support/node.ts, or the real CLI,
 * src/bin/tidings.ts) on a free port of 127.0.0.1, wait until `GET /readyz` answers 200, keep the tail of its
 * output for failure messages, kill it (SIGKILL by default), or run one to its exit. Every process started here
 * is killed by `killAll` (call it in afterAll) and, as a last resort, when the test process exits.
 *
 * Processes run TypeScript through `node --import tsx`, as `npm start` does (tsx); such a process exits 143 on
 * SIGTERM where the built JS exits 0, which does not matter for SIGKILL. Brokers are brokers.ts'.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { freePort } from "../../support/freePort.ts"

export const NODE_SCRIPT = fileURLToPath(new URL("./node.ts", import.meta.url))
export const CLI_SCRIPT = fileURLToPath(new URL("../../../src/bin/tidings.ts", import.meta.url))
const ROOT = fileURLToPath(new URL("../../../", import.meta.url))

const live = new Set<ChildProcess>()
let hooked = false
const hookExit = () => {
  if (hooked) return
  hooked = true
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL")
  })
}

/** The environment without any tidings or broker setting of the machine running the tests: flags decide. */
export const cleanEnv = (extra: Record<string, string>): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(TIDINGS_|REDIS_|NATS_)/.test(key)) env[key] = value
  }
  return { ...env, ...extra }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface NodeProcess {
  readonly name: string
  readonly port: number
  /** `ws://127.0.0.1:<port>/ws` */
  readonly url: string
  /** `http://127.0.0.1:<port>` */
  readonly http: string
  readonly pid: number
  /** Whether the process is still running. */
  readonly running: () => boolean
  /** The last few kilobytes of its stdout and stderr. */
  readonly output: () => string
  readonly exited: Promise<Exited>
  /** Sends `signal` (default SIGKILL) and waits for the exit. */
  readonly kill: (signal?: NodeJS.Signals) => Promise<Exited>
}

export interface SpawnOptions {
  readonly name: string
  /** NODE_SCRIPT (default) or CLI_SCRIPT. */
  readonly script?: string
  readonly args?: ReadonlyArray<string>
  /** Added to the test process's environment; TIDINGS_PORT is set here unless `port` says otherwise. */
  readonly env?: Record<string, string>
  readonly port?: number
  readonly readyTimeoutMs?: number
}

const tailOf = (text: string) => text.slice(-100_000)

/** The HTTP status of `GET <http>/readyz` (0 when nothing answers), bounded by `timeoutMs`. */
export const readyz = async (http: string, timeoutMs = 2000): Promise<number> => {
  try {
    const response = await fetch(`${http}/readyz`, { signal: AbortSignal.timeout(timeoutMs) })
    await response.arrayBuffer()
    return response.status
  } catch {
    return 0
  }
}

const launch = (options: SpawnOptions, port: number): NodeProcess => {
  hookExit()
  const script = options.script ?? NODE_SCRIPT
  const child = spawn(process.execPath, ["--import", "tsx", script, ...(options.args ?? [])], {
    cwd: ROOT,
    env: { ...process.env, TIDINGS_HOST: "127.0.0.1", TIDINGS_PORT: String(port), ...options.env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  live.add(child)
  let output = ""
  const append = (chunk: Buffer) => {
    output = tailOf(output + chunk.toString())
  }
  child.stdout?.on("data", append)
  child.stderr?.on("data", append)
  const exited = new Promise<Exited>((resolve) => {
    child.once("exit", (code, signal) => {
      live.delete(child)
      resolve({ code, signal })
    })
  })
  const running = () => child.exitCode === null && child.signalCode === null
  return {
    name: options.name,
    port,
    url: `ws://127.0.0.1:${port}/ws`,
    http: `http://127.0.0.1:${port}`,
    pid: child.pid ?? -1,
    running,
    output: () => output,
    exited,
    kill: (signal = "SIGKILL") => {
      if (running()) child.kill(signal)
      return exited
    }
  }
}

/** Starts a server process and resolves once its /readyz answers 200; retries on another port if it exits. */
export const spawnNode = async (options: SpawnOptions): Promise<NodeProcess> => {
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000
  for (let attempt = 1; ; attempt++) {
    const node = launch(options, options.port ?? (await freePort()))
    const deadline = Date.now() + readyTimeoutMs
    let status = 0
    while (node.running() && Date.now() < deadline) {
      status = await readyz(node.http, 500)
      if (status === 200) return node
      await sleep(50)
    }
    await node.kill()
    const why = node.running() ? `not ready after ${readyTimeoutMs} ms (readyz ${status})` : "exited before ready"
    // Another process may have taken the free port between the probe and the bind.
    if (attempt < 3 && options.port === undefined && /EADDRINUSE/.test(node.output())) continue
    throw new Error(`${options.name} on port ${node.port}: ${why}\n--- output ---\n${node.output()}`)
  }
}

export interface RunResult extends Exited {
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

/** Runs a process to its exit (killed after `timeoutMs`), collecting its output separately. */
export const runToExit = (options: SpawnOptions & { readonly timeoutMs?: number }): Promise<RunResult> =>
  new Promise((resolve) => {
    hookExit()
    const started = Date.now()
    const child = spawn(process.execPath, ["--import", "tsx", options.script ?? NODE_SCRIPT, ...(options.args ?? [])], {
      cwd: ROOT,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    live.add(child)
    let stdout = ""
    let stderr = ""
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout = tailOf(stdout + chunk.toString())
    })
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr = tailOf(stderr + chunk.toString())
    })
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000)
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      live.delete(child)
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started })
    })
  })

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); undefined elsewhere or once gone. */
export const cpuSeconds = (pid: number): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux)
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return undefined
  }
}

export interface ReadySample {
  readonly http: string
  /** performance.now() of the answer. */
  readonly at: number
  /** HTTP status of /readyz, 0 when nothing answered. */
  readonly status: number
}

/**
 * Polls /readyz of every node every `intervalMs` until stopped, keeping every answer. A probe unanswered within
 * `probeTimeoutMs` is a sample with status 0. The default (2.5 s) is far above a healthy answer (milliseconds)
 * yet below a stall worth seeing (a node blocked on a broker waits seconds); 1 s was once missed on a busy CI
 * box with two suites beside each other, nothing else wrong.
 */
export const watchReady = (https: ReadonlyArray<string>, intervalMs = 100, probeTimeoutMs = 2500) => {
  const samples: Array<ReadySample> = []
  let stopped = false
  const loops = https.map(async (http) => {
    while (!stopped) {
      const status = await readyz(http, probeTimeoutMs)
      samples.push({ http, at: performance.now(), status })
      await sleep(intervalMs)
    }
  })
  return {
    samples,
    stop: async () => {
      stopped = true
      await Promise.all(loops)
    }
  }
}

/** Kills every process this module started and waits for them (for afterAll, whatever happened). */
export const killAll = async (): Promise<void> => {
  const children = [...live]
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve()
          child.once("exit", () => resolve())
          child.kill("SIGKILL")
        })
    )
  )
}
