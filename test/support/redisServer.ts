/**
 * A private `redis-server` for tests and benchmarks: started on a free port of 127.0.0.1 with no persistence
 * (`--save "" --appendonly no`) and its own temporary directory, never the system Redis on 6379.
 *
 * Fault tests use `stop` (optionally saving a snapshot first, so a restart is a blip rather than data loss),
 * `kill` (SIGKILL) and `restart` (same port, same directory). `command` speaks just enough RESP to send one
 * command and read its reply, so tests can poke at Redis without importing a client library (only
 * src/transports/Redis.ts imports ioredis).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, type Scope } from "effect"
import { freePort } from "./freePort.ts"

export type RespValue = string | number | null | RespError | ReadonlyArray<RespValue>

export class RespError extends Error {
  override readonly name = "RespError"
}

export interface RedisServer {
  readonly url: string
  readonly port: number
  /** Whether the process is running now. */
  readonly running: () => boolean
  /** Sends one command on a fresh connection and returns its reply (a Redis error reply is returned, not thrown). */
  readonly command: (...args: ReadonlyArray<string | number>) => Promise<RespValue>
  /** Shuts the server down; with `persist`, it saves a snapshot first, so `restart` brings the data back. */
  readonly stop: (options?: { readonly persist?: boolean }) => Promise<void>
  /** SIGKILL, as a crash: nothing saved. */
  readonly kill: () => Promise<void>
  /** Starts the server again on the same port (and directory); resolves when it answers. */
  readonly restart: () => Promise<void>
  /** Stops the server if running and removes its directory. */
  readonly dispose: () => Promise<void>
}

const encode = (args: ReadonlyArray<string | number>): Buffer => {
  const parts: Array<Buffer> = [Buffer.from(`*${args.length}\r\n`)]
  for (const arg of args) {
    const bytes = Buffer.from(String(arg))
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from("\r\n"))
  }
  return Buffer.concat(parts)
}

/** Parses one RESP2 value at `at`; undefined when the buffer does not hold all of it yet. */
const parse = (buffer: Buffer, at: number): { value: RespValue; next: number } | undefined => {
  const lineEnd = buffer.indexOf("\r\n", at)
  if (lineEnd < 0) return undefined
  const line = buffer.toString("utf8", at + 1, lineEnd)
  const next = lineEnd + 2
  switch (String.fromCharCode(buffer[at]!)) {
    case "+":
      return { value: line, next }
    case "-":
      return { value: new RespError(line), next }
    case ":":
      return { value: Number(line), next }
    case "$": {
      const length = Number(line)
      if (length < 0) return { value: null, next }
      if (buffer.length < next + length + 2) return undefined
      return { value: buffer.toString("utf8", next, next + length), next: next + length + 2 }
    }
    case "*": {
      const length = Number(line)
      if (length < 0) return { value: null, next }
      const items: Array<RespValue> = []
      let cursor = next
      for (let i = 0; i < length; i++) {
        const item = parse(buffer, cursor)
        if (item === undefined) return undefined
        items.push(item.value)
        cursor = item.next
      }
      return { value: items, next: cursor }
    }
    default:
      throw new Error(`unexpected RESP type byte ${buffer[at]}`)
  }
}

export const sendCommand = (port: number, args: ReadonlyArray<string | number>, timeoutMs = 2000): Promise<RespValue> =>
  new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port })
    let received = Buffer.alloc(0)
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`redis on ${port}: no reply to ${args[0]} within ${timeoutMs} ms`))
    }, timeoutMs)
    const done = (error: Error | undefined, value?: RespValue) => {
      clearTimeout(timer)
      socket.destroy()
      if (error) reject(error)
      else resolve(value ?? null)
    }
    socket.on("connect", () => socket.write(encode(args)))
    socket.on("data", (chunk) => {
      received = Buffer.concat([received, chunk])
      const parsed = parse(received, 0)
      if (parsed !== undefined) done(undefined, parsed.value)
    })
    socket.on("error", (error) => done(error))
    socket.on("close", () => done(new Error(`redis on ${port}: connection closed before a reply to ${args[0]}`)))
  })

// A test run that dies half-way must not leave servers behind.
const live = new Set<ChildProcess>()
let exitHookInstalled = false
const installExitHook = () => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL")
  })
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const waitUntilAnswering = async (port: number, child: ChildProcess, output: () => string): Promise<void> => {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited (${child.exitCode}): ${output()}`)
    try {
      if ((await sendCommand(port, ["PING"], 500)) === "PONG") return
    } catch {
      // not listening yet
    }
    await sleep(25)
  }
  throw new Error(`redis-server on ${port} did not answer within 10 s: ${output()}`)
}

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once("exit", () => resolve()))

/** Starts a private redis-server (`binary` from requireBinary). */
export const startRedisServer = async (binary = "redis-server"): Promise<RedisServer> => {
  installExitHook()
  const dir = mkdtempSync(join(tmpdir(), "tidings-redis-"))
  let port = 0
  let child: ChildProcess | undefined
  let output = ""

  const launch = async (): Promise<void> => {
    output = ""
    const spawned = spawn(
      binary,
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
        "--dbfilename",
        "dump.rdb"
      ],
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    spawned.stdout?.on("data", (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000)
    })
    spawned.stderr?.on("data", (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000)
    })
    child = spawned
    live.add(spawned)
    spawned.once("exit", () => live.delete(spawned))
    await waitUntilAnswering(port, spawned, () => output)
  }

  // Another process may take the free port between the probe and the bind: try a few.
  for (let attempt = 0; ; attempt++) {
    port = await freePort()
    try {
      await launch()
      break
    } catch (error) {
      child?.kill("SIGKILL")
      if (attempt >= 4) {
        rmSync(dir, { recursive: true, force: true })
        throw error
      }
    }
  }

  const stop = async (options?: { readonly persist?: boolean }): Promise<void> => {
    const current = child
    if (current === undefined || current.exitCode !== null) return
    const gone = exited(current)
    // SHUTDOWN closes the connection instead of replying.
    await sendCommand(port, ["SHUTDOWN", options?.persist ? "SAVE" : "NOSAVE"]).catch(() => undefined)
    await Promise.race([gone, sleep(5000).then(() => current.kill("SIGKILL"))])
    await gone
    child = undefined
  }

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    running: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    command: (...args) => sendCommand(port, args),
    stop,
    kill: async () => {
      const current = child
      if (current === undefined) return
      const gone = exited(current)
      current.kill("SIGKILL")
      await gone
      child = undefined
    },
    restart: async () => {
      await stop({ persist: true })
      await launch()
    },
    dispose: async () => {
      await stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** A private redis-server for the lifetime of the scope. */
export const redisServerScoped = (binary: string): Effect.Effect<RedisServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startRedisServer(binary)),
    (server) => Effect.promise(() => server.dispose())
  )
