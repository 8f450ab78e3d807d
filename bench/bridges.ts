/**
 * Bridge throughput: how fast a bridge running in its own process (test/bridges/support/bridgeNode.ts, the progress
 * test protocol, the Redis transport on a private redis-server) moves broker messages into the log.
 *
 * - amqp: N messages (`{requestId, type: "progress", seq, percent}`, a messageId each, routing key
 *   `progress.<requestId>` over `channels` requests) are published to a private RabbitMQ first (persistent, with
 *   publisher confirms) while no bridge runs; then the bridge starts and drains the queue, each message acknowledged
 *   only after its append. Measured: from the bridge's first consumed message to the last one in the log.
 * - redis-pubsub: the same messages are PUBLISHed to `app:out:<requestId>` on a second private redis-server while
 *   the bridge is subscribed, pipelined, with at most `window` messages published and not yet in the log (Redis
 *   pub/sub has no flow control of its own). Measured: from the first publish to the last message in the log.
 *
 * Prints messages/s and the CPU each process used meanwhile (bridge, broker, log Redis), as a table and as JSON.
 *
 *   node --import tsx bench/bridges.ts [--messages 100000] [--channels 200] [--kinds amqp,redis-pubsub]
 *                                      [--prefetch 1000] [--window 20000] [--rounds 3] [--cpu-prof DIR]
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs"
import { cpus, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { connect } from "amqplib"
import { Redis } from "ioredis"
import { requireRabbit, startRabbitServer } from "../test/support/rabbitServer.ts"
import { startRedisServer } from "../test/support/redisServer.ts"
import { findBinary } from "../test/support/requireBinary.ts"

const { values } = parseArgs({
  options: {
    messages: { type: "string", default: "100000" },
    channels: { type: "string", default: "200" },
    kinds: { type: "string", default: "amqp,redis-pubsub" },
    prefetch: { type: "string", default: "1000" },
    window: { type: "string", default: "20000" },
    rounds: { type: "string", default: "3" },
    "cpu-prof": { type: "string" }
  }
})
const total = Number(values.messages)
const channels = Number(values.channels)
const kinds = values.kinds.split(",")
const prefetch = Number(values.prefetch)
const window = Number(values.window)
const rounds = Number(values.rounds)
const BRIDGE_NODE = fileURLToPath(new URL("../test/bridges/support/bridgeNode.ts", import.meta.url))
const ROOT = fileURLToPath(new URL("../", import.meta.url))
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const redisBinary = findBinary("redis-server")
if (redisBinary === undefined) {
  console.error("redis-server not found: apt-get install -y redis-server")
  process.exit(1)
}

/** CPU seconds (user + system) of a process so far, from /proc. */
const cpuSeconds = (pid: number | undefined): number => {
  if (pid === undefined) return 0
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return 0
  }
}

/** The pid of the process listening on `port` (the broker's VM, a redis-server), from /proc/net/tcp and its fds. */
const pidOfPort = (port: number): number | undefined => {
  const hex = port.toString(16).toUpperCase().padStart(4, "0")
  const line = readFileSync("/proc/net/tcp", "utf8")
    .split("\n")
    .find((l) => l.includes(`:${hex} 00000000:0000 0A`))
  const inode = line?.trim().split(/\s+/)[9]
  if (inode === undefined) return undefined
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return Number(pid)
      }
    } catch {
      // not ours to read
    }
  }
  return undefined
}

interface BridgeCounts {
  readonly connected: boolean
  readonly appended: number
  readonly duplicate: number
  readonly dead_lettered: number
  readonly append_failed: number
}

/** The bridge process, and its latest counters with the time they were printed. */
const startBridge = (config: unknown, redisUrl: string, dir: string, profile: string | undefined) => {
  const file = join(dir, "bridges.json")
  writeFileSync(file, JSON.stringify(config))
  const child: ChildProcess = spawn(
    process.execPath,
    [...(profile ? ["--cpu-prof", "--cpu-prof-dir", profile] : []), "--import", "tsx", BRIDGE_NODE],
    {
      cwd: ROOT,
      env: { ...process.env, BRIDGES_FILE: file, REDIS_URL: redisUrl, STATS_EVERY_MS: "50" },
      stdio: ["ignore", "pipe", "pipe"]
    }
  )
  let latest: BridgeCounts = { connected: false, appended: 0, duplicate: 0, dead_lettered: 0, append_failed: 0 }
  let firstMoved: number | undefined
  let output = ""
  let buffered = ""
  child.stdout?.on("data", (chunk: Buffer) => {
    buffered += chunk.toString()
    const lines = buffered.split("\n")
    buffered = lines.pop() ?? ""
    for (const line of lines) {
      if (!line.startsWith('{"stats"')) {
        output = (output + line + "\n").slice(-4000)
        continue
      }
      latest = (JSON.parse(line) as { stats: Array<BridgeCounts> }).stats[0]!
      if (firstMoved === undefined && done(latest) > 0) firstMoved = performance.now()
    }
  })
  child.stderr?.on("data", (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000)
  })
  return {
    child,
    latest: () => latest,
    firstMoved: () => firstMoved,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const gone = new Promise((resolve) => child.once("exit", resolve))
      child.kill("SIGTERM")
      await Promise.race([gone, sleep(10_000).then(() => child.kill("SIGKILL"))])
      await gone
    }
  }
}

const done = (counts: BridgeCounts) => counts.appended + counts.duplicate + counts.dead_lettered

const message = (i: number) => {
  const requestId = `req-${i % channels}`
  return {
    requestId,
    body: JSON.stringify({ requestId, type: "progress", seq: Math.floor(i / channels), percent: (i % 100) + 0.5 })
  }
}

interface Figure {
  readonly kind: string
  readonly messages: number
  readonly channels: number
  readonly ms: number
  readonly perSecond: number
  readonly bridgeCpuPct: number
  /** The bridge's CPU time per message: what a figure would be on a core of its own, less noisy than messages/s. */
  readonly bridgeCpuUsPerMessage: number
  readonly brokerCpuPct: number
  readonly logRedisCpuPct: number
  /** Every other process of the machine, this benchmark's included (of 100 × cores). */
  readonly otherCpuPct: number
  readonly deadLettered: number
  readonly appendFailed: number
}

const waitFor = async (what: string, check: () => boolean, timeoutMs: number, output: () => string) => {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}\n${output()}`)
    await sleep(5)
  }
}

const figure = (kind: string, ms: number, cpu: ReadonlyArray<number>, counts: BridgeCounts): Figure => ({
  kind,
  messages: total,
  channels,
  ms: Math.round(ms),
  perSecond: Math.round((total / ms) * 1000),
  bridgeCpuPct: Math.round((cpu[0]! / (ms / 1000)) * 100),
  bridgeCpuUsPerMessage: Math.round((cpu[0]! * 1e6) / total),
  brokerCpuPct: Math.round((cpu[1]! / (ms / 1000)) * 100),
  logRedisCpuPct: Math.round((cpu[2]! / (ms / 1000)) * 100),
  otherCpuPct: Math.round((cpu[3]! / (ms / 1000)) * 100),
  deadLettered: counts.dead_lettered,
  appendFailed: counts.append_failed
})

/** CPU seconds the whole machine has been busy so far, from /proc/stat. */
const machineBusySeconds = (): number => {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number)
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0)
  return (fields.reduce((a, b) => a + b, 0) - idle) / 100
}

/**
 * CPU seconds the processes used while `work` ran, then what every other process of the machine used (this
 * benchmark's own process included): a busy neighbour makes a figure worth less.
 */
const cpuDuring = async (pids: ReadonlyArray<number | undefined>, work: () => Promise<void>) => {
  const before = [...pids.map(cpuSeconds), machineBusySeconds()]
  await work()
  const used = pids.map((pid, i) => cpuSeconds(pid) - before[i]!)
  const machine = machineBusySeconds() - before.at(-1)!
  return [...used, Math.max(0, machine - used.reduce((a, b) => a + b, 0))]
}

const benchAmqp = async (dir: string): Promise<Array<Figure> | string> => {
  const script = requireRabbit("bench/bridges.ts amqp")
  if (script === undefined) return "rabbitmq-server not installed"
  const rabbit = await startRabbitServer(script)
  const log = await startRedisServer(redisBinary)
  const figures: Array<Figure> = []
  try {
    const exchange = "work"
    const queue = "tidings-progress"
    const beam = pidOfPort(rabbit.port)
    const logPid = pidOfPort(log.port)
    for (let round = 0; round < rounds; round++) {
      // the topology first, so that the messages wait in the queue for the bridge
      const connection = await connect(rabbit.url)
      const channel = await connection.createConfirmChannel()
      await channel.assertExchange(exchange, "topic", { durable: true })
      await channel.assertQueue(queue, { durable: true })
      await channel.bindQueue(queue, exchange, "progress.*")
      const publishedAt = performance.now()
      for (let i = 0; i < total; i++) {
        const { requestId, body } = message(i)
        const ok = channel.publish(exchange, `progress.${requestId}`, Buffer.from(body), {
          messageId: `m-${round}-${i}`,
          persistent: true,
          contentType: "application/json"
        })
        if (!ok) await new Promise((resolve) => channel.once("drain", resolve))
        if (i % 5000 === 4999) await channel.waitForConfirms()
      }
      await channel.waitForConfirms()
      const publishMs = performance.now() - publishedAt
      const { messageCount } = await channel.checkQueue(queue)
      await connection.close()
      console.log(`amqp: ${total} messages published in ${Math.round(publishMs)} ms; ${messageCount} in the queue`)

      const bridge = startBridge(
        {
          bridges: [
            {
              kind: "amqp",
              name: "workers",
              url: rabbit.url,
              exchange,
              queue,
              bindings: ["progress.*"],
              prefetch,
              channel: "request:{requestId}",
              event: { field: "type" }
            }
          ]
        },
        log.url,
        dir,
        values["cpu-prof"]
      )
      try {
        await waitFor("the bridge consumes", () => bridge.firstMoved() !== undefined, 60_000, bridge.output)
        const started = bridge.firstMoved()!
        let ms = 0
        const cpu = await cpuDuring([bridge.child.pid, beam, logPid], async () => {
          await waitFor("the bridge drains the queue", () => done(bridge.latest()) >= total, 300_000, bridge.output)
          ms = performance.now() - started
        })
        figures.push(figure("amqp", ms, cpu, bridge.latest()))
        console.log(JSON.stringify(figures.at(-1)))
      } finally {
        await bridge.stop()
      }
    }
    return figures
  } finally {
    await log.dispose()
    await rabbit.dispose()
  }
}

const benchRedisPubSub = async (dir: string): Promise<Array<Figure>> => {
  const source = await startRedisServer(redisBinary)
  const log = await startRedisServer(redisBinary)
  const publisher = new Redis(source.url)
  const figures: Array<Figure> = []
  try {
    const sourcePid = pidOfPort(source.port)
    const logPid = pidOfPort(log.port)
    for (let round = 0; round < rounds; round++) {
      const bridge = startBridge(
        {
          bridges: [
            {
              kind: "redis-pubsub",
              name: "automation",
              url: source.url,
              patterns: ["app:out:*"],
              channel: "request:{1}",
              event: { field: "type" }
            }
          ]
        },
        log.url,
        dir,
        values["cpu-prof"]
      )
      try {
        await waitFor("the bridge subscribes", () => bridge.latest().connected, 60_000, bridge.output)
        const started = performance.now()
        let ms = 0
        const cpu = await cpuDuring([bridge.child.pid, sourcePid, logPid], async () => {
          let sent = 0
          while (sent < total) {
            // at most `window` messages published and not yet in the log
            while (sent - done(bridge.latest()) >= window) await sleep(2)
            const pipeline = publisher.pipeline()
            const batch = Math.min(500, total - sent)
            for (let i = 0; i < batch; i++) {
              const { requestId, body } = message(sent + i)
              pipeline.publish(`app:out:${requestId}`, body)
            }
            await pipeline.exec()
            sent += batch
          }
          await waitFor("the bridge has every message", () => done(bridge.latest()) >= total, 300_000, bridge.output)
          ms = performance.now() - started
        })
        figures.push(figure("redis-pubsub", ms, cpu, bridge.latest()))
        console.log(JSON.stringify(figures.at(-1)))
      } finally {
        await bridge.stop()
      }
    }
    return figures
  } finally {
    publisher.disconnect()
    await source.dispose()
    await log.dispose()
  }
}

const main = async () => {
  const dir = mkdtempSync(join(tmpdir(), "tidings-bench-bridges-"))
  console.log(
    `bridges benchmark: ${cpus().length} cores, Node ${process.version}; ${total} messages over ${channels} channels`
  )
  const figures: Array<Figure> = []
  try {
    for (const kind of kinds) {
      if (kind === "amqp") {
        const measured = await benchAmqp(dir)
        if (typeof measured === "string") console.log(`amqp: skipped (${measured})`)
        else figures.push(...measured)
      } else if (kind === "redis-pubsub") figures.push(...(await benchRedisPubSub(dir)))
      else throw new Error(`unknown kind ${kind} (amqp, redis-pubsub)`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  console.table(figures)
  console.log(JSON.stringify({ bridges: figures }))
}

await main()
