/**
 * Starting and talking to bench child processes from the orchestrator: each runs `node --import tsx <script>`
 * under a shell that first raises its open-file limit to the hard limit, with an IPC channel for calls (with
 * timeouts) and events. Every child is killed when the orchestrator exits, however it exits. The child's side of
 * the protocol is ipc.ts.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import type { FromChild, ToChild } from "./ipc.ts"

const live = new Set<ChildProcess>()
let hooked = false
const hookExit = () => {
  if (hooked) return
  hooked = true
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL")
  })
}

export interface SpawnOptions {
  /** For messages. */
  readonly name: string
  /** Script path relative to bench/. */
  readonly script: string
  readonly args?: ReadonlyArray<string>
  /** Extra node flags (--expose-gc, --cpu-prof ...). */
  readonly nodeArgs?: ReadonlyArray<string>
  /** Open-file limit to ask for (the shell's ulimit; keep it within the hard limit, see procstat.fdLimit). */
  readonly fdLimit?: number
  readonly readyTimeoutMs?: number
  /** Pin the child to these CPUs (taskset -c list), so server and load generator do not share a core. */
  readonly cpus?: string | undefined
  readonly env?: Record<string, string>
}

export class Child<Info = unknown> {
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  private readonly listeners = new Map<string, Set<(data: unknown) => void>>()
  private output = ""
  readonly exited: Promise<number | null>

  private constructor(
    readonly name: string,
    readonly process: ChildProcess,
    readonly info: Info
  ) {
    this.exited = new Promise((resolve) => process.once("exit", (code) => resolve(code)))
    process.on("message", (message: FromChild) => this.onMessage(message))
    process.once("exit", (code, signal) => {
      live.delete(process)
      for (const [, p] of this.pending) p.reject(new Error(`${name} exited (${code ?? signal}) ${this.tail()}`))
      this.pending.clear()
    })
  }

  get pid(): number {
    return this.process.pid ?? -1
  }

  /** The last lines the child printed (for error messages). */
  tail(): string {
    return this.output.trim() ? `\n--- ${this.name} output ---\n${this.output.trim().slice(-2000)}` : ""
  }

  static async spawn<Info>(options: SpawnOptions): Promise<Child<Info>> {
    hookExit()
    const script = fileURLToPath(new URL(options.script, import.meta.url))
    const fd = options.fdLimit ?? 1024
    const child = spawn(
      "/bin/sh",
      [
        "-c",
        `ulimit -n ${fd} 2>/dev/null; exec ${options.cpus ? `taskset -c ${options.cpus} ` : ""}"$0" "$@"`,
        process.execPath,
        "--import",
        "tsx",
        ...(options.nodeArgs ?? []),
        script,
        ...(options.args ?? [])
      ],
      {
        stdio: ["ignore", "pipe", "pipe", "ipc"],
        env: { ...process.env, ...options.env }
      }
    )
    live.add(child)
    let output = ""
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8000)
      if (process.env.BENCH_VERBOSE) process.stderr.write(`[${options.name}] ${chunk}`)
    }
    child.stdout?.on("data", keep)
    child.stderr?.on("data", keep)
    const info = await new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL")
        reject(new Error(`${options.name} not ready within ${options.readyTimeoutMs ?? 30_000} ms\n${output}`))
      }, options.readyTimeoutMs ?? 30_000)
      child.on("message", (message: FromChild) => {
        if (message.type === "ready") {
          clearTimeout(timer)
          resolve(message.info)
        }
      })
      child.once("exit", (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`${options.name} exited (${code ?? signal}) before ready\n${output.slice(-3000)}`))
      })
    })
    const handle = new Child<Info>(options.name, child, info as Info)
    handle.output = output
    child.stdout?.on("data", (c: Buffer) => (handle.output = (handle.output + c.toString()).slice(-8000)))
    child.stderr?.on("data", (c: Buffer) => (handle.output = (handle.output + c.toString()).slice(-8000)))
    return handle
  }

  private onMessage(message: FromChild): void {
    if (message.type === "result") {
      const p = this.pending.get(message.id)
      if (!p) return
      this.pending.delete(message.id)
      if (message.ok) p.resolve(message.value)
      else p.reject(new Error(`${this.name}: ${message.error}`))
    } else if (message.type === "event") {
      for (const listener of this.listeners.get(message.name) ?? []) listener(message.data)
    }
  }

  call<T = unknown>(op: string, args: unknown = {}, timeoutMs = 60_000): Promise<T> {
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(new Error(`${this.name}: ${op} timed out after ${timeoutMs} ms${this.tail()}`))
      }, timeoutMs)
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer)
          resolve(v as T)
        },
        reject: (e) => {
          clearTimeout(timer)
          reject(e)
        }
      })
      this.post({ type: "call", id, op, args })
    })
  }

  notify(op: string, args: unknown): void {
    this.post({ type: "notify", op, args })
  }

  on(event: string, listener: (data: unknown) => void): () => void {
    let set = this.listeners.get(event)
    if (!set) this.listeners.set(event, (set = new Set()))
    set.add(listener)
    return () => set.delete(listener)
  }

  private post(message: ToChild): void {
    if (this.process.connected) this.process.send(message)
  }

  /** Asks the child to exit (so it can write a CPU profile), then kills it after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return
    this.post({ type: "notify", op: "exit", args: {} })
    const timer = setTimeout(() => this.process.kill("SIGKILL"), graceMs)
    await this.exited
    clearTimeout(timer)
  }
}
