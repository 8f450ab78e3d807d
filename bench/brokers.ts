/**
 * Private Redis and NATS servers for a bench run, started on free ports of 127.0.0.1 through the same helpers the
 * tests use (test/support), only when a scenario asks for that transport, and only when both the transport module
 * loads and the server binary exists — otherwise the reason is returned and the scenario is reported as skipped.
 * Everything started here is stopped by `stopAll` (and killed if the orchestrator dies).
 */
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { startNatsServer } from "../test/support/natsServer.ts"
import { startRedisServer } from "../test/support/redisServer.ts"
import { findBinary } from "../test/support/requireBinary.ts"

/** `nats-jsparser`: NATS with nats.js's own protocol parser instead of the transport's (FastParser.ts), to compare. */
export type TransportName = "memory" | "redis" | "nats" | "nats-jsparser"

export interface Broker {
  readonly url: string
  readonly pid: number | undefined
  readonly stop: () => Promise<void>
}

const started = new Map<TransportName, Promise<Broker | string>>()

const moduleLoads = async (name: "Redis" | "Nats"): Promise<string | undefined> => {
  const path = fileURLToPath(new URL(`../src/transports/${name}.ts`, import.meta.url))
  if (!existsSync(path)) return `src/transports/${name}.ts does not exist yet`
  try {
    await import(path)
    return undefined
  } catch (error) {
    return `src/transports/${name}.ts does not load: ${(error as Error).message.split("\n")[0]}`
  }
}

/** pid of the process listening on `port` (for CPU accounting), from /proc/net/tcp and /proc/<pid>/fd. */
const pidOfPort = async (port: number): Promise<number | undefined> => {
  const { readFileSync, readdirSync, readlinkSync } = await import("node:fs")
  try {
    const hex = port.toString(16).toUpperCase().padStart(4, "0")
    const line = readFileSync("/proc/net/tcp", "utf8")
      .split("\n")
      .find((l) => l.includes(`:${hex} 00000000:0000 0A`))
    const inode = line?.trim().split(/\s+/)[9]
    if (!inode) return undefined
    for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      try {
        for (const fd of readdirSync(`/proc/${pid}/fd`)) {
          if (readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return Number(pid)
        }
      } catch {
        // not ours to read
      }
    }
  } catch {
    // not Linux
  }
  return undefined
}

const start = async (transport: TransportName): Promise<Broker | string> => {
  if (transport === "memory") return { url: "", pid: undefined, stop: async () => {} }
  // the same server as nats: its runs are compared with nats's on equal terms
  if (transport === "nats-jsparser") return broker("nats")
  const binary = findBinary(transport === "redis" ? "redis-server" : "nats-server")
  if (!binary) return `${transport === "redis" ? "redis-server" : "nats-server"} is not installed`
  const problem = await moduleLoads(transport === "redis" ? "Redis" : "Nats")
  if (problem) return problem
  if (transport === "redis") {
    const server = await startRedisServer(binary)
    return { url: server.url, pid: await pidOfPort(server.port), stop: () => server.dispose() }
  }
  const server = await startNatsServer({ binary })
  return { url: server.url, pid: await pidOfPort(server.port), stop: () => server.close() }
}

/** The broker for a transport, started once per run; a string says why it is not available. */
export const broker = (transport: TransportName): Promise<Broker | string> => {
  let b = started.get(transport)
  if (!b) {
    b = start(transport).catch((error: Error) => `${transport} could not start: ${error.message.split("\n")[0]}`)
    started.set(transport, b)
  }
  return b
}

export const stopAll = async (): Promise<void> => {
  for (const b of started.values()) {
    const resolved = await b
    if (typeof resolved !== "string") await resolved.stop().catch(() => undefined)
  }
  started.clear()
}
