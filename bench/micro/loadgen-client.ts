/**
 * Micro-benchmark of the load generator's receive path: CPU per message in a client process holding 1,000
 * WebSocket connections while a `ws` server in another process broadcasts a 150-byte text message to all of them
 * at a fixed rate — with `ws`'s client, then with the load generator's WireSocket. The load generator must cost
 * less per message than the servers it measures, or it sets the ceiling itself.
 * Run: node --import tsx bench/micro/loadgen-client.ts [rounds, default 2] [messages per second per client, default 50]
 *
 * Child roles (same file): `--serve` (the broadcaster), `--clients <port> <ws|wire>` (the measured process).
 */
import { fork } from "node:child_process"
import WebSocket, { WebSocketServer } from "ws"
import { WireSocket } from "../loadgen/WireSocket.ts"

const CLIENTS = 1000
const SECONDS = 5
const payload = JSON.stringify({
  type: "event",
  channel: "bench:fanout",
  epoch: "ep0ch",
  offset: 1,
  data: { s: 1, i: 0, t: 1700000000000.5, m: 1, p: "x".repeat(40) }
})

type Message = {
  port?: number
  ready?: true
  go?: { rate: number; count: number }
  done?: true
  got?: number
  usage?: NodeJS.CpuUsage
}
const send = (message: Message) => process.send!(message)
const next = (child: import("node:child_process").ChildProcess) =>
  new Promise<Message>((resolve) => child.once("message", (m) => resolve(m as Message)))

const serve = () => {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false })
  wss.on("listening", () => send({ port: (wss.address() as { port: number }).port }))
  process.on("message", (m: Message) => {
    if (!m.go) return
    let sent = 0
    const timer = setInterval(() => {
      for (const client of wss.clients) client.send(payload)
      if (++sent >= m.go!.count) {
        clearInterval(timer)
        send({ done: true })
      }
    }, 1000 / m.go.rate)
  })
}

const clients = async (port: number, kind: string) => {
  let got = 0
  const opened: Array<Promise<void>> = []
  for (let i = 0; i < CLIENTS; i++) {
    opened.push(
      new Promise<void>((resolve, reject) => {
        if (kind === "ws") {
          const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false, skipUTF8Validation: true })
          ws.on("message", (data: Buffer) => {
            if (data.toString("latin1").indexOf('"offset":') > 0) got++
          })
          ws.once("open", () => resolve())
          ws.once("error", reject)
        } else {
          new WireSocket(
            `ws://127.0.0.1:${port}`,
            {},
            {
              onOpen: resolve,
              onError: reject,
              onClose: () => undefined,
              onMessage: (text) => {
                if (text.indexOf('"offset":') > 0) got++
              }
            }
          )
        }
      })
    )
  }
  await Promise.all(opened)
  send({ ready: true })
  process.on("message", () => send({ got, usage: process.cpuUsage() }))
}

const measure = async (kind: string, rate: number) => {
  const server = fork(import.meta.filename, ["--serve"], { execArgv: process.execArgv })
  const { port } = await next(server)
  const client = fork(import.meta.filename, ["--clients", String(port), kind], { execArgv: process.execArgv })
  await next(client)
  const ask = async () => {
    const answer = next(client)
    client.send({})
    return answer
  }
  const before = await ask()
  server.send({ go: { rate, count: rate * SECONDS } })
  await next(server)
  await new Promise((resolve) => setTimeout(resolve, 500))
  const after = await ask()
  server.kill()
  client.kill()
  const messages = after.got! - before.got!
  const user = (after.usage!.user - before.usage!.user) / messages
  const system = (after.usage!.system - before.usage!.system) / messages
  console.log(
    `  ${kind.padEnd(4)}: ${messages.toLocaleString("en-US")} messages, ${user.toFixed(2)} µs user + ${system.toFixed(2)} µs system CPU per message`
  )
}

if (process.argv.includes("--serve")) serve()
else if (process.argv.includes("--clients")) {
  const at = process.argv.indexOf("--clients")
  await clients(Number(process.argv[at + 1]), process.argv[at + 2]!)
} else {
  const rounds = Number(process.argv[2] ?? 2)
  const rate = Number(process.argv[3] ?? 50)
  for (let round = 1; round <= rounds; round++) {
    console.log(`round ${round}: ${CLIENTS} clients, ${rate} messages/s each for ${SECONDS} s`)
    await measure("ws", rate)
    await measure("wire", rate)
  }
}
