/**
 * Micro-benchmark of connection setup against the bench server (bench/server.ts --standalone, memory transport,
 * HS256 auth): N connections opened C at a time by the load generator's WireSocket with a token each (signed
 * beforehand), timed to the 101 and to `welcome`; reports connections per second, latency percentiles and the
 * server process's CPU per connection (user and system, from /proc). The server runs alone in its own process.
 * Run: node --import tsx bench/micro/connection-setup.ts [connections, default 4000] [concurrency, default 64]
 */
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { WireSocket } from "../loadgen/WireSocket.ts"
import { benchSubprotocol, benchToken } from "../protocol.ts"

const count = Number(process.argv[2] ?? 4000)
const concurrency = Number(process.argv[3] ?? 64)

const server = spawn(
  process.execPath,
  ["--import", "tsx", "bench/server.ts", "--standalone", "--publish-rate", "0", "--deadline-ms", "120000"],
  { stdio: ["ignore", "pipe", "inherit"] }
)
const url = await new Promise<string>((resolve) =>
  server.stdout.on("data", (chunk) => {
    const found = /on (ws:\/\/\S+)/.exec(String(chunk))
    if (found) resolve(found[1]!)
  })
)
/** The server's CPU so far, µs (utime, stime from /proc/<pid>/stat, in clock ticks of 10 ms). */
const serverCpu = () => {
  const fields = readFileSync(`/proc/${server.pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return { user: Number(fields[11]) * 10_000, system: Number(fields[12]) * 10_000 }
}

const tokens = await Promise.all(Array.from({ length: count }, (_, i) => benchToken(`user-${i}`)))
const upgraded: Array<number> = []
const welcomed: Array<number> = []
const sockets: Array<WireSocket> = []
const open = (index: number) =>
  new Promise<void>((resolve, reject) => {
    const started = performance.now()
    const socket = new WireSocket(
      url,
      { protocol: benchSubprotocol, headers: { authorization: `Bearer ${tokens[index]}` } },
      {
        onOpen: () => upgraded.push(performance.now() - started),
        onMessage: (text) => {
          if (!text.includes('"welcome"')) return
          welcomed.push(performance.now() - started)
          resolve()
        },
        onClose: () => undefined,
        onError: reject
      }
    )
    sockets.push(socket)
  })

const before = serverCpu()
const started = performance.now()
let next = 0
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < count) await open(next++)
  })
)
const ms = performance.now() - started
const after = serverCpu()
const percentile = (values: Array<number>, p: number) =>
  values.sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]!.toFixed(1)
console.log(
  `${count} connections, ${concurrency} at a time: ${Math.round((count / ms) * 1000).toLocaleString("en-US")}/s; ` +
    `101 p50 ${percentile(upgraded, 0.5)} p99 ${percentile(upgraded, 0.99)} ms; welcome p50 ${percentile(welcomed, 0.5)} ` +
    `p99 ${percentile(welcomed, 0.99)} ms; server CPU per connection ${Math.round((after.user - before.user) / count)} µs user ` +
    `+ ${Math.round((after.system - before.system) / count)} µs system`
)
for (const socket of sockets) socket.terminate()
server.kill("SIGINT")
await new Promise((resolve) => setTimeout(resolve, 1000))
process.exit(0)
