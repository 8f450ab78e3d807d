/**
 * A private Redis with Sentinel for tests: a primary, one replica or more (`--replicaof` the primary) and three sentinels,
 * every one on a free port of 127.0.0.1 with its own temporary directory and no persistence. The sentinels monitor
 * the primary as `name` with quorum 2, `down-after-milliseconds` and `failover-timeout` as given (defaults 1000 and
 * 5000 ms). `kill` crashes a server (SIGKILL), `restart` starts it again (the sentinels turn a returning old
 * primary into a replica of the new one); `primaryPort()` asks a sentinel which port it now names.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "./freePort.ts"
import { sendCommand } from "./redisServer.ts"

export interface SentinelProcess {
  readonly port: number
  readonly running: () => boolean
  /** The last 64 KiB of what it printed (a sentinel's log: +sdown, +switch-master, …). */
  readonly log: () => string
  /** SIGKILL, waits for the exit. */
  readonly kill: () => Promise<void>
  /** Starts it again with the same arguments and `extra` (same port; empty, without persistence). */
  readonly restart: (extra?: ReadonlyArray<string>) => Promise<SentinelProcess>
}

export interface RedisSentinelSetup {
  readonly name: string
  readonly primary: SentinelProcess
  /** The first replica. */
  readonly replica: SentinelProcess
  /** Every replica (`options.replicas`, default 1). */
  readonly replicas: ReadonlyArray<SentinelProcess>
  readonly sentinels: ReadonlyArray<SentinelProcess>
  /** `127.0.0.1:<port>,…` of the sentinels (the form REDIS_SENTINELS takes). */
  readonly sentinelList: string
  /** The port the first answering sentinel names as the primary now. */
  readonly primaryPort: () => Promise<number | undefined>
  /** The port every sentinel names, once they all name the same one. */
  readonly agreedPrimaryPort: () => Promise<number | undefined>
  readonly close: () => Promise<void>
}

const live = new Set<ChildProcess>()
let hooked = false
const hookExit = () => {
  if (hooked) return
  hooked = true
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL")
  })
}
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const launch = async (binary: string, args: ReadonlyArray<string>, port: number): Promise<SentinelProcess> => {
  hookExit()
  const child = spawn(binary, [...args], { stdio: ["ignore", "pipe", "pipe"] })
  live.add(child)
  let output = ""
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-65536)
  }
  child.stdout?.on("data", keep)
  child.stderr?.on("data", keep)
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      live.delete(child)
      resolve()
    })
  )
  const running = () => child.exitCode === null && child.signalCode === null
  const deadline = Date.now() + 10_000
  for (;;) {
    if (!running()) throw new Error(`redis on ${port} exited: ${output}`)
    if ((await sendCommand(port, ["PING"], 500).catch(() => undefined)) === "PONG") break
    if (Date.now() > deadline) throw new Error(`redis on ${port} did not answer within 10 s: ${output}`)
    await sleep(25)
  }
  return {
    port,
    running,
    log: () => output,
    kill: async () => {
      if (running()) child.kill("SIGKILL")
      await exited
    },
    restart: async (extra = []) => {
      if (running()) child.kill("SIGKILL")
      await exited
      return launch(binary, [...args, ...extra], port)
    }
  }
}

export const startRedisSentinel = async (
  options: {
    readonly binary?: string
    readonly name?: string
    readonly downAfterMs?: number
    readonly failoverTimeoutMs?: number
    readonly replicas?: number
  } = {}
): Promise<RedisSentinelSetup> => {
  const binary = options.binary ?? "redis-server"
  const name = options.name ?? "tidings"
  const dir = mkdtempSync(join(tmpdir(), "tidings-sentinel-"))
  const base = (port: number, sub: string) => {
    const own = join(dir, sub)
    mkdirSync(own)
    return ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", own]
  }
  const started: Array<SentinelProcess> = []
  try {
    const primaryPort = await freePort()
    const primary = await launch(binary, base(primaryPort, "primary"), primaryPort)
    started.push(primary)
    const replicas: Array<SentinelProcess> = []
    for (let i = 0; i < (options.replicas ?? 1); i++) {
      const replicaPort = await freePort()
      const replica = await launch(
        binary,
        [...base(replicaPort, `replica-${i}`), "--replicaof", "127.0.0.1", String(primaryPort)],
        replicaPort
      )
      started.push(replica)
      replicas.push(replica)
    }
    // every replica is in sync before the sentinels start watching
    const deadline = Date.now() + 10_000
    for (const replica of replicas) {
      while (!/master_link_status:up/.test(String(await sendCommand(replica.port, ["INFO", "replication"])))) {
        if (Date.now() > deadline) throw new Error("the replicas did not sync within 10 s")
        await sleep(50)
      }
    }
    const sentinels: Array<SentinelProcess> = []
    for (let i = 0; i < 3; i++) {
      const port = await freePort()
      const conf = join(dir, `sentinel-${i}.conf`)
      writeFileSync(
        conf,
        [
          `port ${port}`,
          "bind 127.0.0.1",
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
          `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${name} ${options.failoverTimeoutMs ?? 5000}`,
          `sentinel parallel-syncs ${name} 1`,
          ""
        ].join("\n")
      )
      const sentinel = await launch(binary, [conf, "--sentinel"], port)
      sentinels.push(sentinel)
      started.push(sentinel)
    }
    const primaryPortNow = async () => {
      for (const s of sentinels) {
        if (!s.running()) continue
        const reply = await sendCommand(s.port, ["SENTINEL", "get-master-addr-by-name", name], 1000).catch(
          () => undefined
        )
        if (Array.isArray(reply) && reply.length === 2) return Number(reply[1])
      }
      return undefined
    }
    // every sentinel has found the replica and the other sentinels (so a failover can be agreed)
    while (
      (
        await Promise.all(
          sentinels.map((s) => sendCommand(s.port, ["SENTINEL", "master", name], 1000).catch(() => undefined))
        )
      ).some((reply) => {
        if (!Array.isArray(reply)) return true
        const fields = new Map<string, unknown>()
        for (let i = 0; i + 1 < reply.length; i += 2) fields.set(String(reply[i]), reply[i + 1])
        return Number(fields.get("num-slaves")) < replicas.length || Number(fields.get("num-other-sentinels")) < 2
      })
    ) {
      if (Date.now() > deadline + 10_000) throw new Error("the sentinels did not discover each other within 20 s")
      await sleep(100)
    }
    return {
      name,
      primary,
      replica: replicas[0]!,
      replicas,
      sentinels,
      sentinelList: sentinels.map((s) => `127.0.0.1:${s.port}`).join(","),
      primaryPort: primaryPortNow,
      agreedPrimaryPort: async () => {
        const answers = await Promise.all(
          sentinels.map((s) =>
            sendCommand(s.port, ["SENTINEL", "get-master-addr-by-name", name], 1000).catch(() => undefined)
          )
        )
        const ports = answers.map((reply) => (Array.isArray(reply) && reply.length === 2 ? Number(reply[1]) : -1))
        return ports.every((p) => p === ports[0]) && ports[0] !== -1 ? ports[0] : undefined
      },
      close: async () => {
        await Promise.all(started.map((p) => p.kill()))
        rmSync(dir, { recursive: true, force: true })
      }
    }
  } catch (error) {
    await Promise.all(started.map((p) => p.kill()))
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
}
