/**
 * A rig: one server under test in its own process (tidings with a transport, or a baseline; or tidings as several
 * processes behind one port, primary.ts, whose CPU is summed over the primary and every process), the
 * load-generator processes, and CPU accounting of all of them plus the broker, for one scenario. Starting a fresh
 * rig per scenario keeps one scenario's garbage, logs and channels out of the next one's numbers.
 */
import { existsSync, readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { sendCommand } from "../test/support/redisServer.ts"
import type { Broker, TransportName } from "./brokers.ts"
import { Child } from "./child.ts"
import { LoadGen } from "./loadgen/LoadGen.ts"
import type { SettledMemory } from "./memory.ts"
import { CpuMeter, MACHINE } from "./procstat.ts"
import type { Cpu, ServerKind } from "./results.ts"

export interface ServerInfo {
  readonly kind: ServerKind
  readonly port: number
  readonly pid: number
  /** With several server processes: the primary's pid and every process's (CPU is summed over them). */
  readonly pids?: ReadonlyArray<number>
  readonly fdLimit?: { soft: number; hard: number }
}

export interface RigOptions {
  readonly server: ServerKind
  readonly transport: TransportName
  readonly broker: Broker
  readonly workers: number
  /** tidings server processes behind the port (primary.ts); 1: one plain process (server.ts). */
  readonly serverProcesses: number
  readonly runId: string
  readonly deadlineMs: number
  readonly fdLimit: number
  /** tidings clients ack cumulatively at most this long after an event (0: never). */
  readonly ackMs: number
  /** tidings: listen with this accept backlog (Server.ts's default is 4096). */
  readonly backlog?: number | undefined
  /** Entries the server keeps per channel (resume scenarios that miss more than the default). */
  readonly retention?: number | undefined
  /** Write a V8 CPU profile of the server here (node --cpu-prof). */
  readonly cpuProfDir?: string | undefined
  /** CPU lists (taskset -c) for the server and the load generators, or undefined to let the kernel place them. */
  readonly pin?: { readonly server: string; readonly loadgen: string } | undefined
  /** Write V8 CPU profiles of the load generators here. */
  readonly loadgenProfDir?: string | undefined
}

const scripts: Record<ServerKind, string> = {
  tidings: "server.ts",
  ws: "baselines/ws-server.ts",
  socketio: "baselines/socketio-server.ts"
}

export class Rig {
  private constructor(
    readonly options: RigOptions,
    readonly server: Child<ServerInfo>,
    readonly loadgen: LoadGen
  ) {}

  static async start(options: RigOptions): Promise<Rig> {
    const args = ["--transport", options.transport, "--run-id", options.runId]
    args.push("--deadline-ms", String(options.deadlineMs))
    if (options.retention !== undefined) args.push("--retention", String(options.retention))
    if (options.backlog !== undefined && options.server === "tidings") args.push("--backlog", String(options.backlog))
    if (options.transport === "redis") args.push("--redis-url", options.broker.url)
    if (options.transport === "nats" || options.transport === "nats-jsparser")
      args.push("--nats-url", options.broker.url)
    const nodeArgs = ["--expose-gc"]
    // one directory per rig: tsx's loader thread writes a profile of its own beside the main thread's
    if (options.cpuProfDir) nodeArgs.push("--cpu-prof", "--cpu-prof-dir", join(options.cpuProfDir, options.runId))
    const group = options.server === "tidings" && options.serverProcesses > 1
    if (group) args.push("--processes", String(options.serverProcesses))
    const server = await Child.spawn<ServerInfo>({
      name: `${options.server}-server`,
      script: group ? "primary.ts" : scripts[options.server],
      args,
      nodeArgs,
      fdLimit: options.fdLimit,
      // every process compiles the TypeScript (tsx) on the same cores
      readyTimeoutMs: 60_000 + (group ? 20_000 * options.serverProcesses : 0),
      cpus: options.pin?.server
    })
    try {
      const loadgen = await LoadGen.start(options.workers, {
        fdLimit: options.fdLimit,
        deadlineMs: options.deadlineMs,
        ackMs: options.ackMs,
        cpus: options.pin?.loadgen,
        cpuProfDir: options.loadgenProfDir ? join(options.loadgenProfDir, options.runId) : undefined
      })
      return new Rig(options, server, loadgen)
    } catch (error) {
      await server.stop()
      throw error
    }
  }

  get url(): string {
    const { port } = this.server.info
    return this.options.server === "tidings" ? `ws://127.0.0.1:${port}/ws` : `ws://127.0.0.1:${port}`
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.server.info.port}`
  }

  /** The main thread's CPU profile (the largest one written), once the server has exited. */
  get profilePath(): string | undefined {
    if (!this.options.cpuProfDir) return undefined
    const dir = join(this.options.cpuProfDir, this.options.runId)
    if (!existsSync(dir)) return undefined
    const files = readdirSync(dir)
      .filter((f) => f.endsWith(".cpuprofile"))
      .map((f) => join(dir, f))
      .sort((a, b) => statSync(b).size - statSync(a).size)
    return files[0]
  }

  /** The server's processes: the one server, or the primary and every process of a group. */
  get serverPids(): ReadonlyArray<number> {
    return this.server.info.pids ?? [this.server.pid]
  }

  /** Starts a CPU measurement of server, load generators and broker; call the result to end it. */
  cpu(): () => Cpu {
    const brokerPid = this.options.broker.pid
    const serverPids = this.serverPids
    const pids = [...serverPids, ...this.loadgen.pids, ...(brokerPid ? [brokerPid] : []), process.pid, MACHINE]
    const meter = new CpuMeter(() => pids)
    meter.begin()
    return () => {
      const use = meter.end()
      const loadgen = this.loadgen.pids.map((p) => use.get(p))
      const server = serverPids.map((p) => use.get(p))
      const ours = pids.filter((p) => p !== MACHINE).map((p) => use.get(p))
      const machine = use.get(MACHINE)
      return {
        server: server.some((v) => v === undefined) ? undefined : server.reduce((a, b) => a! + b!, 0),
        ...(serverPids.length > 1 ? { serverPrimary: use.get(this.server.pid) } : {}),
        loadgen: loadgen.some((v) => v === undefined) ? undefined : loadgen.reduce((a, b) => a! + b!, 0),
        broker: brokerPid ? use.get(brokerPid) : undefined,
        other:
          machine === undefined || ours.some((v) => v === undefined)
            ? undefined
            : Math.max(0, machine - ours.reduce((a, b) => a! + b!, 0)!)
      }
    }
  }

  private get redisPort(): number | undefined {
    return this.options.transport === "redis" ? Number(new URL(this.options.broker.url).port) : undefined
  }

  /** For Redis: zero its per-command statistics (before a measurement). */
  async resetBrokerStats(): Promise<void> {
    const port = this.redisPort
    if (port !== undefined) await sendCommand(port, ["CONFIG", "RESETSTAT"]).catch(() => undefined)
  }

  /** For Redis: the server-side cost per command (INFO commandstats), to tell a Redis-bound run from a client-bound one. */
  async brokerCommandStats(): Promise<string | undefined> {
    const port = this.redisPort
    if (port === undefined) return undefined
    const info = String(await sendCommand(port, ["INFO", "commandstats"]).catch(() => ""))
    const lines = info
      .split("\r\n")
      .map((line) => /^cmdstat_(\w+):calls=(\d+),usec=\d+,usec_per_call=([\d.]+)/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null && Number(m[2]) > 1000)
      .map((m) => `${m[1]} ${m[3]} µs/call (${m[2]} calls)`)
    return lines.length > 0 ? `inside Redis: ${lines.join(", ")}` : undefined
  }

  /** The server's settled memory (memory.ts): RSS and its young generation's resident bytes. */
  gcRss(): Promise<SettledMemory> {
    // a group settles every process's memory, several at a time on the same cores
    return this.server.call<SettledMemory>("gcRss", {}, 90_000)
  }

  stats(): Promise<Record<string, unknown>> {
    // a group asks every process, and a process still writing a backlog answers late
    return this.server.call<Record<string, unknown>>("stats", {}, 30_000)
  }

  async stop(): Promise<void> {
    await this.loadgen.stop().catch(() => undefined)
    await this.server.stop(10_000)
  }
}
