/**
 * A private PostgreSQL for tests and benchmarks: `initdb` into a temporary directory, `postgres` on a free port of
 * 127.0.0.1 (its socket in the same directory), never the system cluster on 5432. PostgreSQL refuses to run as
 * root, so as root the directory is handed to the `postgres` user and both programs run as it. Durability is
 * off (`fsync=off`): these databases live for one test run.
 *
 * Fault tests use `pause`/`resume` (SIGSTOP/SIGCONT of every server process: the database stops answering but
 * its connections stay open, a blackhole), `stop` (fast shutdown) and `start` (same port, same data).
 * `findPostgres` locates the binaries (Debian keeps them under /usr/lib/postgresql/<version>/bin);
 * `requirePostgres` skips visibly locally and fails under CI when they are missing.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "./freePort.ts"

export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string
  readonly port: number
  /** Whether the postmaster is running now. */
  readonly running: () => boolean
  /** SIGSTOP every server process: connections stay open, nothing answers. */
  readonly pause: () => void
  /** SIGCONT every server process. */
  readonly resume: () => void
  /** Fast shutdown (SIGINT), waiting for the postmaster to exit. */
  readonly stop: () => Promise<void>
  /** Starts it again on the same port with the same data; resolves when it accepts connections. */
  readonly start: () => Promise<void>
  /** Stops it and removes its directory. */
  readonly dispose: () => Promise<void>
}

export interface PostgresBinaries {
  readonly initdb: string
  readonly postgres: string
}

/** The newest installed PostgreSQL's initdb and postgres, or undefined. */
export const findPostgres = (): PostgresBinaries | undefined => {
  const root = "/usr/lib/postgresql"
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
    : []
  for (const version of versions) {
    const bin = join(root, version, "bin")
    if (existsSync(join(bin, "initdb")) && existsSync(join(bin, "postgres"))) {
      return { initdb: join(bin, "initdb"), postgres: join(bin, "postgres") }
    }
  }
  return undefined
}

/** The binaries, or undefined after announcing the skip; throws under CI. */
export const requirePostgres = (suite: string): PostgresBinaries | undefined => {
  const found = findPostgres()
  if (found) return found
  const line = `${suite}: PostgreSQL (initdb, postgres) not found under /usr/lib/postgresql`
  if (process.env.CI === "true") {
    throw new Error(`${line}; CI must run every PostgreSQL suite (install it: apt-get install -y postgresql)`)
  }
  process.stderr.write(`\n  SKIPPED ${line} — install it to run this suite (apt-get install -y postgresql)\n\n`)
  return undefined
}

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

/** The uid/gid to run PostgreSQL as: the `postgres` user when we are root, else ourselves. */
const runAs = (): { uid: number; gid: number } | undefined => {
  if (process.getuid?.() !== 0) return undefined
  const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim())
  const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim())
  return { uid, gid }
}

/** A protocol-3.0 StartupMessage for user and database `postgres`. */
const startupMessage = (): Buffer => {
  const params = Buffer.from("user\0postgres\0database\0postgres\0\0")
  const head = Buffer.alloc(8)
  head.writeInt32BE(8 + params.length, 0)
  head.writeInt32BE(196_608, 4)
  return Buffer.concat([head, params])
}

/**
 * Whether the server would let a client in now. Answering the port is not enough: while the database system is
 * starting up (slow on a loaded machine), the postmaster accepts the socket and even answers an SSLRequest, then
 * refuses the StartupMessage with FATAL 57P03 — which a client reports as "Failed to connect". So this sends a
 * StartupMessage (trust authentication) and calls the server ready only on an Authentication answer ('R'); an
 * ErrorResponse ('E'), a close or silence means not yet.
 */
const answers = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.on("error", () => done(false))
    socket.on("close", () => done(false))
    socket.on("connect", () => socket.write(startupMessage()))
    socket.once("data", (chunk: Buffer) => done(chunk[0] === 0x52))
  })

/** The pids of the postmaster and its children (for pause/resume). */
const processTree = (pid: number): Array<number> => {
  try {
    const children = execFileSync("pgrep", ["-P", String(pid)])
      .toString()
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map(Number)
    return [pid, ...children]
  } catch {
    return [pid]
  }
}

export const startPostgresServer = async (binaries: PostgresBinaries): Promise<PostgresServer> => {
  installExitHook()
  const owner = runAs()
  const dir = mkdtempSync(join(tmpdir(), "tidings-pg-"))
  if (owner) chownSync(dir, owner.uid, owner.gid)
  const data = join(dir, "data")
  execFileSync(binaries.initdb, ["-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"], {
    stdio: "ignore",
    ...(owner ?? {})
  })
  let port = 0
  let child: ChildProcess | undefined
  let output = ""

  const launch = async (): Promise<void> => {
    output = ""
    const spawned = spawn(
      binaries.postgres,
      [
        "-D",
        data,
        "-p",
        String(port),
        "-k",
        dir,
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
        "-c",
        "max_connections=300",
        "-c",
        "shared_buffers=64MB"
      ],
      { stdio: ["ignore", "pipe", "pipe"], ...(owner ?? {}) }
    )
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000)
    }
    spawned.stdout?.on("data", keep)
    spawned.stderr?.on("data", keep)
    child = spawned
    live.add(spawned)
    spawned.once("exit", () => live.delete(spawned))
    const deadline = Date.now() + 20_000
    while (Date.now() < deadline) {
      if (spawned.exitCode !== null) throw new Error(`postgres on ${port} exited (${spawned.exitCode}): ${output}`)
      if (await answers(port)) return
      await sleep(50)
    }
    throw new Error(`postgres on ${port} did not accept connections within 20 s: ${output}`)
  }

  for (let attempt = 0; ; attempt++) {
    port = await freePort()
    try {
      await launch()
      break
    } catch (error) {
      child?.kill("SIGKILL")
      if (attempt >= 3) {
        rmSync(dir, { recursive: true, force: true })
        throw error
      }
    }
  }

  const signal = (name: NodeJS.Signals) => {
    if (child?.pid === undefined || child.exitCode !== null) return
    for (const pid of processTree(child.pid)) {
      try {
        process.kill(pid, name)
      } catch {
        // exited meanwhile
      }
    }
  }

  const stop = async (): Promise<void> => {
    const current = child
    if (current === undefined || current.exitCode !== null || current.signalCode !== null) return
    signal("SIGCONT")
    const gone = new Promise<void>((resolve) => current.once("exit", () => resolve()))
    current.kill("SIGINT")
    await Promise.race([gone, sleep(10_000).then(() => current.kill("SIGKILL"))])
    await gone
    child = undefined
  }

  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    running: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    pause: () => signal("SIGSTOP"),
    resume: () => signal("SIGCONT"),
    stop,
    start: launch,
    dispose: async () => {
      await stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
