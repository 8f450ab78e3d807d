/**
 * Where a server's memory per idle connection goes: starts the bench server (`tidings`, memory transport) or the
 * bare `ws` baseline in its own process, opens 50 connections, takes a heap snapshot, opens N more (tidings ones
 * authenticate with a token that expires in an hour and subscribe to bench:fanout, as in the bench; `sse` ones
 * read bench:fanout as Server-Sent Events from the tidings server, as `--scenario sse-fanout` does), takes
 * another, and prints per added connection the JS heap in use and the snapshot's growth by object kind
 * (constructor name for objects, closures and native objects). RSS is the bench's figure (`--scenario hold`): taking a snapshot grows it by far more than the
 * connections do. Snapshots are written to a temporary directory and removed.
 * Run: node --import tsx bench/micro/idle-heap.ts [tidings|ws|sse, default tidings] [connections, default 3000]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Child } from "../child.ts"
import { Recorder } from "../loadgen/Recorder.ts"
import { SseClient } from "../loadgen/SseClient.ts"
import { WireSocket } from "../loadgen/WireSocket.ts"
import { benchSubprotocol, benchToken, fanoutChannel } from "../protocol.ts"

const kind = process.argv[2] === "ws" ? "ws" : process.argv[2] === "sse" ? "sse" : "tidings"
const count = Number(process.argv[3] ?? 3000)
const warm = 50

const dir = mkdtempSync(join(tmpdir(), "tidings-idle-heap-"))
const server = await Child.spawn<{ port: number }>({
  name: kind,
  script: kind === "ws" ? "baselines/ws-server.ts" : "server.ts",
  nodeArgs: ["--expose-gc", "--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${dir}`],
  fdLimit: count + warm + 1000
})
const url = kind === "tidings" ? `ws://127.0.0.1:${server.info.port}/ws` : `ws://127.0.0.1:${server.info.port}`
const sockets: Array<WireSocket | SseClient> = []
const sseEnv = { recorder: new Recorder(), unexpectedClose: () => undefined, problem: () => undefined }

/** Opens one connection; a tidings one is ready once subscribed, a ws one once open, an SSE reader at its 200. */
const open = async (index: number): Promise<void> => {
  const token = await benchToken(`u${index}`)
  if (kind === "sse") {
    const reader = new SseClient(index, `http://127.0.0.1:${server.info.port}`, token, fanoutChannel, sseEnv)
    sockets.push(reader)
    return reader.connect()
  }
  await new Promise<void>((resolve, reject) => {
    const socket = new WireSocket(
      url,
      { protocol: benchSubprotocol, headers: { authorization: `Bearer ${token}` } },
      {
        onOpen: () => {
          if (kind === "ws") resolve()
        },
        onMessage: (text) => {
          if (text.includes('"welcome"')) socket.send(`{"type":"subscribe","channel":"${fanoutChannel}"}`)
          if (text.includes('"subscribed"')) resolve()
        },
        onClose: () => undefined,
        onError: reject
      }
    )
    sockets.push(socket)
  })
}

const openMany = async (from: number, n: number) => {
  let next = from
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < from + n) await open(next++)
    })
  )
}

/** Asks the server for a heap snapshot and returns its path once it is written completely. */
const snapshot = async (): Promise<string> => {
  const before = new Set(readdirSync(dir))
  process.kill(server.pid, "SIGUSR2")
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 500))
    const file = readdirSync(dir).find((name) => !before.has(name))
    if (file === undefined) continue
    // the file appears when writing starts: wait until its size stops changing and the JSON is closed (a large
    // snapshot can pause for more than one poll between its writes)
    let size = -1
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 500))
      const text = readFileSync(join(dir, file))
      if (
        text.length === size &&
        text
          .toString("latin1", Math.max(0, text.length - 16))
          .trimEnd()
          .endsWith("}")
      ) {
        return join(dir, file)
      }
      size = text.length
    }
  }
}

interface HeapSnapshot {
  snapshot: { meta: { node_fields: Array<string>; node_types: [Array<string>] } }
  nodes: Array<number>
  strings: Array<string>
}

/** Self size and count by object kind. */
const kinds = (file: string): Map<string, { count: number; bytes: number }> => {
  const heap = JSON.parse(readFileSync(file, "utf8")) as HeapSnapshot
  const fields = heap.snapshot.meta.node_fields
  const types = heap.snapshot.meta.node_types[0]
  const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((f) => fields.indexOf(f)) as [
    number,
    number,
    number
  ]
  const byKind = new Map<string, { count: number; bytes: number }>()
  for (let i = 0; i < heap.nodes.length; i += fields.length) {
    const type = types[heap.nodes[i + typeAt]!]!
    const named = type === "object" || type === "closure" || type === "native"
    const name = named ? `${type} ${heap.strings[heap.nodes[i + nameAt]!]}` : `(${type})`
    const entry = byKind.get(name) ?? { count: 0, bytes: 0 }
    entry.count++
    entry.bytes += heap.nodes[i + sizeAt]!
    byKind.set(name, entry)
  }
  return byKind
}

try {
  await openMany(0, warm)
  await new Promise((resolve) => setTimeout(resolve, 300))
  await server.call("gcRss")
  const heap0 = (await server.call<{ heapUsed: number }>("stats")).heapUsed
  const first = await snapshot()
  await openMany(warm, count)
  await new Promise((resolve) => setTimeout(resolve, 500))
  await server.call("gcRss")
  const heap1 = (await server.call<{ heapUsed: number }>("stats")).heapUsed
  const second = await snapshot()
  const kib = (bytes: number) => (bytes / count / 1024).toFixed(2)
  console.log(
    `${kind}, ${count} connections: per connection ${kib(heap1 - heap0)} KiB of JS heap in use after a full GC`
  )
  const before = kinds(first)
  const rows = [...kinds(second)].map(([name, after]) => {
    const was = before.get(name) ?? { count: 0, bytes: 0 }
    return { name, count: (after.count - was.count) / count, bytes: (after.bytes - was.bytes) / count }
  })
  rows.sort((a, b) => b.bytes - a.bytes)
  console.log(`heap snapshot growth per connection: ${kib(rows.reduce((sum, row) => sum + row.bytes, 0) * count)} KiB`)
  for (const row of rows.filter((r) => r.bytes >= 8)) {
    console.log(`${row.bytes.toFixed(0).padStart(6)} B  ${row.count.toFixed(2).padStart(6)} ×  ${row.name}`)
  }
} catch (error) {
  console.error(error)
  process.exitCode = 1
} finally {
  for (const socket of sockets) socket.close()
  rmSync(dir, { recursive: true, force: true })
  process.exit()
}
