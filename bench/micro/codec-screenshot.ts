/**
 * JSON against MessagePack for the fan-out of a step event carrying a screenshot (issue 18, item 3): a server in
 * its own process (memory transport, anonymous access) publishes `step` events whose `screenshot` is a Bytes field
 * of SIZE random bytes to N subscribers, all JSON or all MessagePack, one event at a time (the next once every
 * client has the previous one). Reports the bytes each delivery puts on the wire (WebSocket payload) and the
 * server process's CPU per delivery (user + system, from /proc), and the size of an event frame's envelope for a
 * 100-byte payload in each codec and envelope (self-describing and compact). The clients run in this process; the server alone in the other (a fresh one per
 * run). Rounds alternate which codec goes first; the medians are over the rounds.
 * Run: node --import tsx bench/micro/codec-screenshot.ts [clients, default 1000] [events, default 20]
 *      [bytes, default 102400] [rounds, default 3]
 */
import { fork } from "node:child_process"
import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { Schema } from "effect"
import WebSocket from "ws"
import { Bytes } from "../../src/protocol/Bytes.ts"
import {
  encodeCompactEventFrame,
  encodeCompactEventFrameMsgpack,
  encodeEventFrame,
  encodeEventFrameMsgpack
} from "../../src/protocol/EventFrame.ts"
import type { Codec } from "../../src/protocol/Negotiation.ts"
import * as Protocol from "../../src/protocol/Protocol.ts"
import { startServer } from "../../src/server/Embedded.ts"

const Shots = Protocol.make(
  "shots",
  Protocol.version({
    version: 1,
    events: {
      step: Schema.Struct({ executionId: Schema.String, step: Schema.Int, action: Schema.String, screenshot: Bytes })
    },
    commands: {}
  })
)

const CHANNEL = "run:5a766dc3-be4"

if (process.argv[2] === "serve") {
  // the server process: publishes on request from the parent, reports when it is listening
  const server = await startServer({
    protocol: Shots,
    handlers: {},
    port: 0,
    auth: { anonymous: { channels: ["run:*"] } },
    limits: { maxOutboundBytes: 64 * 1024 * 1024, connectionAttemptsPerSecondPerIp: 1_000_000 }
  })
  const screenshot = randomBytes(Number(process.argv[3]))
  process.on("message", (message: { readonly step: number }) => {
    void server
      .publish(CHANNEL, "step", { executionId: "e-1", step: message.step, action: "click", screenshot })
      .then((position) => process.send!({ published: position.offset }))
  })
  process.on("disconnect", () => void server.close().then(() => process.exit(0)))
  process.send!({ url: server.url })
} else {
  const clients = Number(process.argv[2] ?? 1000)
  const events = Number(process.argv[3] ?? 20)
  const size = Number(process.argv[4] ?? 102_400)
  const rounds = Number(process.argv[5] ?? 3)

  const run = async (codec: Codec) => {
    const server = fork(new URL(import.meta.url).pathname, ["serve", String(size)], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    const url = await new Promise<string>((resolve) =>
      server.once("message", (message: { url: string }) => resolve(message.url))
    )
    /** The server's CPU so far, µs (utime and stime from /proc/<pid>/stat, clock ticks of 10 ms). */
    const serverCpu = () => {
      const fields = readFileSync(`/proc/${server.pid}/stat`, "utf8").split(") ")[1]!.split(" ")
      return { user: Number(fields[11]) * 10_000, system: Number(fields[12]) * 10_000 }
    }
    let bytes = 0
    let received = 0
    let waiting: (() => void) | undefined
    const isEvent = (data: Buffer, isBinary: boolean) =>
      isBinary ? data.subarray(0, 16).includes("event") : data.subarray(0, 16).toString() === '{"type":"event",'
    const sockets = await Promise.all(
      Array.from(
        { length: clients },
        () =>
          new Promise<WebSocket>((resolve, reject) => {
            const ws = new WebSocket(url, [`tidings.shots.v1.${codec}`], { perMessageDeflate: false })
            ws.on("error", reject)
            ws.on("open", () => ws.send(encode(codec, { type: "authenticate" })))
            ws.on("message", (data: Buffer, isBinary) => {
              if (!isEvent(data, isBinary)) {
                if (data.includes("subscribed")) resolve(ws)
                else if (data.includes("welcome")) ws.send(encode(codec, { type: "subscribe", channel: CHANNEL }))
                return
              }
              bytes += data.length
              received++
              if (received % clients === 0) waiting?.()
            })
          })
      )
    )
    const before = serverCpu()
    const started = performance.now()
    for (let step = 1; step <= events; step++) {
      const all = new Promise<void>((resolve) => {
        waiting = resolve
      })
      server.send({ step })
      await all
    }
    const elapsedMs = performance.now() - started
    const after = serverCpu()
    for (const ws of sockets) ws.terminate()
    server.disconnect()
    const deliveries = events * clients
    const perDelivery = (us: number) => Number((us / deliveries).toFixed(1))
    return {
      codec,
      deliveries,
      bytesPerDelivery: Math.round(bytes / deliveries),
      serverCpuUsPerDelivery: perDelivery(after.user - before.user + after.system - before.system),
      serverUserUsPerDelivery: perDelivery(after.user - before.user),
      serverSystemUsPerDelivery: perDelivery(after.system - before.system),
      deliveriesPerSec: Math.round((deliveries / elapsedMs) * 1000)
    }
  }

  const encode = (codec: Codec, frame: object): string | Buffer =>
    codec === "json" ? JSON.stringify(frame) : Buffer.from(encodeMsgpack(frame))
  const { encode: encodeMsgpack } = await import("../../src/protocol/MessagePack.ts")

  /** An event frame's envelope for a 100-byte payload, as the agent protocol's frames look (UUID epoch). */
  const envelope = () => {
    const parts = { channel: CHANNEL, epoch: "03372aa3-1545-4f65-8866-ac1262cd3080", offset: 1234, time: Date.now() }
    const data = { text: "x".repeat(89) } // {"text":"xxx…"}: 100 bytes of JSON
    const json = encodeEventFrame(parts, "message_chunk", JSON.stringify(data))
    const msgpack = encodeEventFrameMsgpack(parts, "message_chunk", data)
    // the compact envelope with the first alias a node gives (1); the channel and epoch went once, in an alias frame
    const compactJson = encodeCompactEventFrame(1, parts, "message_chunk", JSON.stringify(data))
    const compactMsgpack = encodeCompactEventFrameMsgpack(1, parts, "message_chunk", data)
    return {
      payloadBytes: JSON.stringify(data).length,
      json: Buffer.byteLength(json),
      msgpack: msgpack.length,
      compactJson: Buffer.byteLength(compactJson),
      compactMsgpack: compactMsgpack.length
    }
  }

  type Result = Awaited<ReturnType<typeof run>>
  const results: Record<Codec, Array<Result>> = { json: [], msgpack: [] }
  const ratios: Array<number> = []
  for (let round = 0; round < rounds; round++) {
    const order: ReadonlyArray<Codec> = round % 2 === 0 ? ["json", "msgpack"] : ["msgpack", "json"]
    for (const codec of order) results[codec].push(await run(codec))
    ratios.push(results.json[round]!.serverCpuUsPerDelivery / results.msgpack[round]!.serverCpuUsPerDelivery)
  }
  const median = (values: ReadonlyArray<number>) => {
    const sorted = [...values].sort((a, b) => a - b)
    return sorted[Math.floor(sorted.length / 2)]!
  }
  const summary = (codec: Codec) => ({
    bytesPerDelivery: results[codec][0]!.bytesPerDelivery,
    serverCpuUsPerDelivery: results[codec].map((r) => r.serverCpuUsPerDelivery),
    serverUserUsPerDelivery: results[codec].map((r) => r.serverUserUsPerDelivery),
    serverSystemUsPerDelivery: results[codec].map((r) => r.serverSystemUsPerDelivery),
    deliveriesPerSec: results[codec].map((r) => r.deliveriesPerSec)
  })
  const json = summary("json")
  const msgpack = summary("msgpack")
  console.log(
    JSON.stringify(
      {
        clients,
        events,
        screenshotBytes: size,
        rounds,
        json,
        msgpack,
        msgpackBytesSaved: `${(100 * (1 - msgpack.bytesPerDelivery / json.bytesPerDelivery)).toFixed(1)}%`,
        serverCpuRatioPerRound: ratios.map((r) => Number(r.toFixed(2))),
        serverCpuRatioMedian: Number(median(ratios).toFixed(2)),
        envelope: envelope()
      },
      null,
      2
    )
  )
}
