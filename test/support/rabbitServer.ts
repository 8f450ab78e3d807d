/**
 * A private RabbitMQ node for tests and benchmarks, never the machine's own (which holds 5672/25672 and the default
 * epmd port): its own node name (`tidings-test-<random>@localhost`), its own free ports (AMQP, distribution and a
 * private epmd this module starts and ends), its own Erlang cookie and HOME, and every file it writes (mnesia,
 * logs, feature flags, an empty plugins file, so no management or prometheus listener) in one temporary directory.
 * Run as root, the node drops to the `rabbitmq` user as the packaged service does (the directory is chowned to it).
 *
 * `requireRabbit` decides whether a suite runs (requireBinary: skip visibly locally, throw under CI=true). It probes
 * `rabbitmqctl --version`, never `rabbitmq-server --version`: the server script passes unknown flags to the Erlang
 * VM, which ignores them, so `rabbitmq-server --version` would boot a broker with the machine's configuration (so
 * requireBinary is asked about rabbitmq-server only when no such file exists, to announce the skip).
 *
 * The node is started through the package's own script (Debian: /usr/lib/rabbitmq/bin/rabbitmq-server; /usr/sbin's
 * wrapper would `su` and write to /var/log/rabbitmq) in a process group of its own, so `kill` (SIGKILL) takes the
 * script and the VM together; the VM's helpers (erl_child_setup, inet_gethost) leave when it does. `leftovers` names
 * any process still carrying this node's name in its environment, and `dispose` ends those by pid.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { connect as connectTcp } from "node:net"
import { tmpdir } from "node:os"
import { delimiter, dirname, join } from "node:path"
import { connect as connectAmqp } from "amqplib"
import { Effect, type Scope } from "effect"
import { freePort } from "./freePort.ts"
import { findBinary, requireBinary } from "./requireBinary.ts"

export interface RabbitServer {
  /** `amqp://guest:guest@127.0.0.1:<port>` */
  readonly url: string
  readonly port: number
  readonly nodeName: string
  readonly dir: string
  /** Whether the node's process is running now. */
  readonly running: () => boolean
  /** The tail of the node's stdout and stderr. */
  readonly output: () => string
  /** Stops the node gracefully (SIGTERM; SIGKILL after 20 s); durable queues and persistent messages stay. */
  readonly stop: () => Promise<void>
  /** SIGKILL, as a crash. */
  readonly kill: () => Promise<void>
  /** Starts the node again on the same ports and directory; resolves when it takes AMQP connections. */
  readonly restart: () => Promise<void>
  /** Pids of processes still carrying this node's name (should be none once stopped). */
  readonly leftovers: () => ReadonlyArray<number>
  /** Stops the node and its epmd, ends any leftover process by pid, removes the directory. */
  readonly dispose: () => Promise<void>
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const onPath = (name: string): string | undefined => {
  if (name.includes("/")) return existsSync(name) ? name : undefined
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir !== "" && existsSync(join(dir, name))) return join(dir, name)
  }
  return undefined
}

/** The node's start script, beside the CLI in a generic install or in Debian's /usr/lib/rabbitmq/bin. */
const serverScript = (ctl: string): string | undefined => {
  const candidates = ["/usr/lib/rabbitmq/bin/rabbitmq-server"]
  const ctlPath = onPath(ctl)
  if (ctlPath !== undefined && !ctlPath.startsWith("/usr/sbin/"))
    candidates.push(join(dirname(ctlPath), "rabbitmq-server"))
  return candidates.find((path) => existsSync(path))
}

/**
 * The start script when this machine has RabbitMQ; otherwise undefined after announcing the skip (throws under CI).
 */
export const requireRabbit = (suite: string): string | undefined => {
  const ctl = findBinary("rabbitmqctl")
  if (ctl === undefined) {
    const script = ["rabbitmq-server", "/usr/sbin/rabbitmq-server", "/usr/lib/rabbitmq/bin/rabbitmq-server"].find(
      (candidate) => onPath(candidate) !== undefined
    )
    if (script !== undefined) throw new Error(`${suite}: found ${script} but no working rabbitmqctl beside it`)
    // not installed: requireBinary only announces the skip (or throws under CI), as nothing can be run
    return requireBinary("rabbitmq-server", suite)
  }
  const script = serverScript(ctl)
  if (script === undefined) throw new Error(`${suite}: found ${ctl} but no rabbitmq-server script beside it`)
  if (onPath("epmd") === undefined) throw new Error(`${suite}: found RabbitMQ but no epmd on PATH`)
  return script
}

// A test run that dies half-way must not leave nodes behind.
const live = new Set<ChildProcess>()
let exitHookInstalled = false
const installExitHook = () => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on("exit", () => {
    for (const child of live) {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL")
      } catch {
        // already gone
      }
    }
  })
}

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once("exit", () => resolve()))

/** SIGKILL to the child's process group (the start script and the VM). */
const killGroup = (child: ChildProcess) => {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL")
  } catch {
    // already gone
  }
}

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connectTcp({ host: "127.0.0.1", port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

/** The uid and gid of the `rabbitmq` user when running as root (the node drops to it); else none. */
const serviceUser = (): { uid: number; gid: number } | undefined => {
  if (process.getuid?.() !== 0) return undefined
  try {
    const uid = Number(execFileSync("id", ["-u", "rabbitmq"], { encoding: "utf8" }).trim())
    const gid = Number(execFileSync("id", ["-g", "rabbitmq"], { encoding: "utf8" }).trim())
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined
  } catch {
    return undefined
  }
}

const chownTree = (path: string, owner: { uid: number; gid: number }) => {
  chownSync(path, owner.uid, owner.gid)
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name)
    if (entry.isDirectory()) chownTree(child, owner)
    else chownSync(child, owner.uid, owner.gid)
  }
}

/** Pids whose environment names this node (the VM and its helpers) or whose command line is its epmd. */
const processesOf = (nodeName: string, epmdPort: number): Array<number> => {
  const found: Array<number> = []
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, "latin1")
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "latin1").split("\0")
      const isEpmd = cmdline[0]?.endsWith("epmd") === true && cmdline.includes(String(epmdPort))
      if (isEpmd || environ.split("\0").includes(`RABBITMQ_NODENAME=${nodeName}`)) found.push(Number(entry))
    } catch {
      // gone, or not ours to read
    }
  }
  return found
}

export interface RabbitServerOptions {
  /** Extra lines for rabbitmq.conf. */
  readonly config?: ReadonlyArray<string>
  /** How long to wait for the node to take AMQP connections (default 40 s). */
  readonly startTimeoutMs?: number
}

/** Starts a private RabbitMQ node (`script` from requireRabbit). */
export const startRabbitServer = async (script: string, options: RabbitServerOptions = {}): Promise<RabbitServer> => {
  installExitHook()
  const dir = mkdtempSync(join(tmpdir(), "tidings-rabbit-"))
  const nodeName = `tidings-test-${randomBytes(6).toString("hex")}@localhost`
  const owner = serviceUser()
  writeFileSync(join(dir, "enabled_plugins"), "[].\n")
  writeFileSync(
    join(dir, "rabbitmq.conf"),
    [
      "log.console = true",
      "log.console.level = warning",
      "log.file.level = info",
      // a test machine may have little free disk: do not block publishers for it
      "disk_free_limit.absolute = 1MB",
      ...(options.config ?? [])
    ].join("\n") + "\n"
  )
  writeFileSync(join(dir, ".erlang.cookie"), randomBytes(20).toString("hex"), { mode: 0o400 })
  if (owner !== undefined) chownTree(dir, owner)

  const epmdBinary = onPath("epmd") ?? "epmd"
  let port = 0
  let distPort = 0
  let epmdPort = 0
  let epmd: ChildProcess | undefined
  let node: ChildProcess | undefined
  let output = ""
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000)
  }

  const startEpmd = async () => {
    const spawned = spawn(epmdBinary, ["-port", String(epmdPort), "-address", "127.0.0.1"], {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
      ...(owner ?? {})
    })
    spawned.stdout?.on("data", keep)
    spawned.stderr?.on("data", keep)
    epmd = spawned
    live.add(spawned)
    spawned.once("exit", () => live.delete(spawned))
    const deadline = Date.now() + 5000
    while (!(await accepts(epmdPort))) {
      if (spawned.exitCode !== null) throw new Error(`epmd on ${epmdPort} exited (${spawned.exitCode}): ${output}`)
      if (Date.now() > deadline) throw new Error(`epmd on ${epmdPort} did not listen within 5 s: ${output}`)
      await sleep(20)
    }
  }

  const env = (): NodeJS.ProcessEnv => {
    const base: NodeJS.ProcessEnv = {}
    for (const [key, value] of Object.entries(process.env)) {
      // none of the caller's Erlang or RabbitMQ settings
      if (!/^(RABBITMQ_|ERL_|ERLANG_)/.test(key)) base[key] = value
    }
    return {
      ...base,
      HOME: dir,
      RABBITMQ_NODENAME: nodeName,
      RABBITMQ_NODE_IP_ADDRESS: "127.0.0.1",
      RABBITMQ_NODE_PORT: String(port),
      RABBITMQ_DIST_PORT: String(distPort),
      ERL_EPMD_PORT: String(epmdPort),
      ERL_EPMD_ADDRESS: "127.0.0.1",
      ERL_FLAGS: "-kernel inet_dist_use_interface {127,0,0,1}",
      RABBITMQ_MNESIA_BASE: join(dir, "mnesia"),
      RABBITMQ_LOG_BASE: join(dir, "log"),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, "enabled_plugins"),
      RABBITMQ_PLUGINS_EXPAND_DIR: join(dir, "plugins-expand"),
      RABBITMQ_FEATURE_FLAGS_FILE: join(dir, "feature_flags"),
      RABBITMQ_CONFIG_FILE: join(dir, "rabbitmq.conf"),
      RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, "advanced.config"),
      // not /etc/rabbitmq/rabbitmq-env.conf, which names the machine's node
      RABBITMQ_CONF_ENV_FILE: join(dir, "rabbitmq-env.conf"),
      RABBITMQ_PID_FILE: join(dir, "rabbitmq.pid")
    }
  }

  const waitUntilAccepting = async (child: ChildProcess) => {
    const timeoutMs = options.startTimeoutMs ?? 40_000
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`rabbitmq node ${nodeName} exited (${child.exitCode ?? child.signalCode}): ${output}`)
      }
      if (await accepts(port)) {
        try {
          const connection = await connectAmqp(`amqp://guest:guest@127.0.0.1:${port}`, { timeout: 2000 })
          await connection.close()
          return
        } catch {
          // listening, not yet answering
        }
      }
      await sleep(100)
    }
    throw new Error(`rabbitmq node ${nodeName} did not take AMQP connections within ${timeoutMs} ms: ${output}`)
  }

  const launch = async () => {
    const spawned = spawn(script, [], {
      cwd: dir,
      env: env(),
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
      ...(owner ?? {})
    })
    spawned.stdout?.on("data", keep)
    spawned.stderr?.on("data", keep)
    node = spawned
    live.add(spawned)
    spawned.once("exit", () => live.delete(spawned))
    await waitUntilAccepting(spawned)
  }

  const stopNode = async (signal: "SIGTERM" | "SIGKILL") => {
    const current = node
    if (current === undefined) return
    node = undefined
    const gone = exited(current)
    if (signal === "SIGKILL") killGroup(current)
    else {
      try {
        current.kill("SIGTERM")
      } catch {
        // already gone
      }
      await Promise.race([gone, sleep(20_000)])
      killGroup(current)
    }
    await gone
    // the VM's helpers leave once it is gone
    const deadline = Date.now() + 5000
    while (Date.now() < deadline && processesOf(nodeName, -1).length > 0) await sleep(50)
  }

  const stopEpmd = async () => {
    const current = epmd
    if (current === undefined) return
    epmd = undefined
    const gone = exited(current)
    killGroup(current)
    await gone
  }

  // Another process may take a free port between the probe and the bind: try a few.
  for (let attempt = 0; ; attempt++) {
    port = await freePort()
    distPort = await freePort()
    epmdPort = await freePort()
    try {
      await startEpmd()
      await launch()
      break
    } catch (error) {
      await stopNode("SIGKILL")
      await stopEpmd()
      if (attempt >= 2 || !/eaddrinuse|already in use|epmd/i.test(String(error))) {
        rmSync(dir, { recursive: true, force: true })
        throw error
      }
    }
  }

  const leftovers = () => processesOf(nodeName, epmdPort)

  return {
    url: `amqp://guest:guest@127.0.0.1:${port}`,
    port,
    nodeName,
    dir,
    running: () => node !== undefined && node.exitCode === null && node.signalCode === null,
    output: () => output,
    stop: () => stopNode("SIGTERM"),
    kill: () => stopNode("SIGKILL"),
    restart: async () => {
      await stopNode("SIGTERM")
      await launch()
    },
    leftovers,
    dispose: async () => {
      await stopNode("SIGTERM")
      await stopEpmd()
      for (const pid of leftovers()) {
        try {
          process.kill(pid, "SIGKILL")
        } catch {
          // gone meanwhile
        }
      }
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** A private RabbitMQ node for the lifetime of the scope. */
export const rabbitServerScoped = (
  script: string,
  options?: RabbitServerOptions
): Effect.Effect<RabbitServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startRabbitServer(script, options)),
    (server) => Effect.promise(() => server.dispose())
  )
