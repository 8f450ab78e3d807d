/**
 * The tidings server under test as several processes behind one port (`--server-processes N`): this process is
 * the node:cluster primary of `src/server/processes` (`supervise`, the code `tidings serve --processes N` runs),
 * and forks N copies of bench/server.ts, each a full server on the shared Redis or NATS transport. The primary
 * accepts every connection and hands it to the next process in turn; it serves nothing itself.
 *
 * Towards the orchestrator it is one server (ipc.ts): it answers `ready` once every process is, with the pids
 * of all of them (CPU is summed over the primary and every process); `stats` and `gcRss` ask every process and
 * sum (RSS counts the primary too, so memory per connection covers everything the node holds); the publisher's
 * calls go to process 0 alone (one publisher, as one application would publish; the transport carries its
 * events to every process). It does not restart what the supervisor restarts, nor judge anything.
 */
import cluster, { type Worker } from "node:cluster"
import { type AddressInfo, createServer } from "node:net"
import { fileURLToPath } from "node:url"
import * as Balancing from "../src/server/processes/Balancing.ts"
import * as Processes from "../src/server/processes/index.ts"
import { type FromChild, flag, serve, type ToChild } from "./ipc.ts"
import { type SettledMemory, settledRss } from "./memory.ts"
import { fdLimit } from "./procstat.ts"

const count = Number(flag("processes", "2"))
const deadlineMs = Number(flag("deadline-ms", "600000"))

interface Member {
  readonly worker: Worker
  readonly index: number
  readonly pid: number
  readonly port: number
}

/** Members by process index (a restarted process replaces its slot). */
const members = new Map<number, Member>()
const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>()
let nextId = 1
let allReady: () => void = () => {}
const ready = new Promise<void>((resolve) => {
  allReady = resolve
})

cluster.on("message", (worker: Worker, message: FromChild) => {
  if (message?.type === "ready") {
    const info = message.info as { process: number; pid: number; port: number }
    members.set(info.process, { worker, index: info.process, pid: info.pid, port: info.port })
    if (members.size === count) allReady()
  } else if (message?.type === "result") {
    const call = pending.get(message.id)
    pending.delete(message.id)
    if (message.ok) call?.resolve(message.value)
    else call?.reject(new Error(message.error))
  }
})

const post = (member: Member, message: ToChild) => {
  if (member.worker.isConnected()) member.worker.send(message)
}

const call = <T>(member: Member, op: string, args: unknown, timeoutMs: number): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const id = nextId++
    const timer = setTimeout(() => {
      pending.delete(id)
      reject(new Error(`server process ${member.index}: ${op} timed out after ${timeoutMs} ms`))
    }, timeoutMs)
    pending.set(id, {
      resolve: (value) => {
        clearTimeout(timer)
        resolve(value as T)
      },
      reject: (error) => {
        clearTimeout(timer)
        reject(error)
      }
    })
    post(member, { type: "call", id, op, args })
  })

const sorted = () => [...members.values()].sort((a, b) => a.index - b.index)
const first = () => members.get(0) ?? sorted()[0]!
const everyone = <T>(op: string, args: unknown, timeoutMs: number) =>
  Promise.all(sorted().map((m) => call<T>(m, op, args, timeoutMs)))

/** Adds numbers and merges count objects ({code: n}) field by field. */
const sum = (parts: ReadonlyArray<Record<string, unknown>>): Record<string, unknown> => {
  const total: Record<string, unknown> = {}
  for (const part of parts) {
    for (const [key, value] of Object.entries(part)) {
      if (typeof value === "number") total[key] = ((total[key] as number | undefined) ?? 0) + value
      else if (value !== null && typeof value === "object")
        total[key] = sum([(total[key] as Record<string, unknown> | undefined) ?? {}, value as Record<string, unknown>])
    }
  }
  return total
}

const stats = async () => {
  const parts = await everyone<Record<string, unknown>>("stats", {}, 25_000)
  return {
    ...sum(parts),
    processes: parts.length,
    // the processes inherit the primary's limit (node:cluster forks them)
    openFileLimit: fdLimit()?.soft,
    primaryRss: process.memoryUsage().rss,
    perProcess: parts.map((p, i) => ({ process: sorted()[i]!.index, connections: p.connections, rss: p.rss }))
  }
}

/** Every process's settled memory and the primary's own, summed. */
const gcRss = async (): Promise<SettledMemory & { perProcess: ReadonlyArray<number> }> => {
  const [own, parts] = await Promise.all([settledRss(), everyone<SettledMemory>("gcRss", {}, 80_000)])
  return {
    rss: own.rss + parts.reduce((s, p) => s + p.rss, 0),
    young: own.young + parts.reduce((s, p) => s + p.young, 0),
    gc: own.gc && parts.every((p) => p.gc),
    perProcess: [own.rss, ...parts.map((p) => p.rss)]
  }
}

/** The publisher's calls (and anything else) go to process 0. */
const toFirst = (op: string) => (args: unknown) => call(first(), op, args, deadlineMs)
const publisherOps = ["paced", "stopPaced", "unpaced", "burst", "appendRate", "top"] as const

/** How the processes share the port: TIDINGS_PROCESS_BALANCING as for tidings serve, else the supervisor's default. */
const balancing = Balancing.resolve(process.env[Balancing.BALANCING_ENV] as Balancing.Balancing | undefined)
/** A port of its own for the group: with kernel balancing every process listens on it (port 0 gives each its own). */
const groupPort = (): Promise<number> =>
  new Promise((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolve(port))
    })
  })
const serverArgs = process.argv.slice(2)
if (balancing === "kernel") serverArgs.push("--port", String(await groupPort()))
process.stderr.write(`bench primary: ${count} processes, ${balancing} balancing\n`)

const server = fileURLToPath(new URL("./server.ts", import.meta.url))
cluster.setupPrimary({ exec: server, args: serverArgs, execArgv: process.execArgv })
const supervisor = Processes.supervise({
  processes: count,
  balancing,
  log: (line) => process.stderr.write(`bench primary: ${line}\n`)
})
await ready

serve(
  {
    stats,
    gcRss,
    // a notify: the unpaced publisher waits for the load generator's progress
    progress: (args: unknown) => post(first(), { type: "notify", op: "progress", args }),
    ...Object.fromEntries(publisherOps.map((op) => [op, toFirst(op)]))
  },
  {
    kind: "tidings",
    port: first().port,
    pid: process.pid,
    pids: [process.pid, ...sorted().map((m) => m.pid)],
    processes: count,
    fdLimit: fdLimit()
  },
  deadlineMs,
  () => {
    supervisor.stop()
    return supervisor.exited.then(() => undefined)
  }
)
