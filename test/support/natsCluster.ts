/**
 * Starts a private 3-node (or n-node) `nats-server` cluster with JetStream for tests: every server has a free
 * client port and a free cluster port on 127.0.0.1, its own temporary store directory, a server name
 * (`n0`, `n1`, …, which JetStream reports as a stream's leader), one `--cluster_name` and `--routes` to every
 * other member. Each server can be killed (SIGKILL), stopped (SIGTERM), paused (SIGSTOP) and resumed (SIGCONT),
 * and restarted on the same ports with the same store directory. `ready` waits until JetStream answers (a meta
 * leader is elected). It never touches a system NATS. Finding the binary is requireBinary.ts's.
 */
import type { ChildProcess } from "node:child_process"
import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { exitOf, hasExited, spawnUntilReady } from "./childProcesses.ts"
import { freePort } from "./freePort.ts"
import { type JetStreamQueries, jetStreamQueries } from "./jetStreamApi.ts"

export interface ClusterMember {
  /** Server name (`n0`, `n1`, …): what `$JS.API.STREAM.INFO` reports as `cluster.leader`. */
  readonly name: string
  /** `nats://127.0.0.1:<port>` */
  readonly url: string
  readonly port: number
  readonly clusterPort: number
  readonly storeDir: string
  /** Process id of the current process (-1 when not running). */
  readonly pid: () => number
  readonly running: () => boolean
  /** SIGKILL, waits for the exit; the store directory is kept. */
  readonly kill: () => Promise<void>
  /** SIGTERM, waits for the exit; the store directory is kept. */
  readonly stop: () => Promise<void>
  /** SIGSTOP: the process is frozen, its sockets stay open. */
  readonly pause: () => void
  /** SIGCONT after `pause`. */
  readonly resume: () => void
  /** Starts it again (stopping it first if running) on the same ports with the same store directory. */
  readonly restart: () => Promise<void>
}

/** JetStream queries (jetStreamQueries) go through any running member. */
export interface NatsCluster extends JetStreamQueries {
  readonly members: ReadonlyArray<ClusterMember>
  /** Every member's client URL, comma-separated (the form NATS_URL takes). */
  readonly urls: string
  readonly name: string
  readonly member: (name: string) => ClusterMember
  /** Stops every server and deletes the store directories. */
  readonly close: () => Promise<void>
}

export const startNatsCluster = async (
  options: { readonly binary?: string; readonly size?: number; readonly readyTimeoutMs?: number } = {}
): Promise<NatsCluster> => {
  const binary = options.binary ?? "nats-server"
  const size = options.size ?? 3
  const readyTimeoutMs = options.readyTimeoutMs ?? 15_000
  const clusterName = `tidings-${randomUUID().slice(0, 8)}`
  const ports = await Promise.all(Array.from({ length: size }, async () => [await freePort(), await freePort()]))
  const members: Array<ClusterMember> = []

  for (let i = 0; i < size; i++) {
    const [port, clusterPort] = ports[i]!
    const name = `n${i}`
    const storeDir = mkdtempSync(join(tmpdir(), `tidings-natscluster-${name}-`))
    const routes = ports
      .filter((_, k) => k !== i)
      .map(([, cp]) => `nats://127.0.0.1:${cp}`)
      .join(",")
    const args = [
      ...["-a", "127.0.0.1", "-p", String(port), "-n", name, "-js", "-sd", storeDir],
      ...["--cluster_name", clusterName, "--cluster", `nats://127.0.0.1:${clusterPort}`, "--routes", routes]
    ]
    let child: ChildProcess | undefined
    const spawnServer = (): Promise<void> => {
      const started = spawnUntilReady(binary, args, {
        label: `nats-server ${name}`,
        readyLine: "Server is ready",
        readyTimeoutMs
      })
      child = started.child
      return started.ready
    }
    const running = () => child !== undefined && !hasExited(child)
    const signal = async (sig: NodeJS.Signals) => {
      const proc = child
      if (proc === undefined || hasExited(proc)) return
      const exited = exitOf(proc)
      proc.kill("SIGCONT")
      proc.kill(sig)
      await exited
    }
    members.push({
      name,
      url: `nats://127.0.0.1:${port}`,
      port,
      clusterPort,
      storeDir,
      pid: () => (running() ? (child?.pid ?? -1) : -1),
      running,
      kill: () => signal("SIGKILL"),
      stop: () => signal("SIGTERM"),
      pause: () => {
        if (running()) child!.kill("SIGSTOP")
      },
      resume: () => {
        if (running()) child!.kill("SIGCONT")
      },
      restart: async () => {
        await signal("SIGTERM")
        await spawnServer()
      },
      start: spawnServer
    } as ClusterMember & { start: () => Promise<void> })
  }

  const close = async () => {
    await Promise.all(members.map((m) => m.stop()))
    for (const m of members) rmSync(m.storeDir, { recursive: true, force: true })
  }
  try {
    // every member at once: each waits for its routes only loosely, but JetStream needs a quorum to elect
    await Promise.all(members.map((m) => (m as unknown as { start: () => Promise<void> }).start()))
  } catch (error) {
    await close()
    throw error
  }

  return {
    members,
    name: clusterName,
    urls: members.map((m) => m.url).join(","),
    member: (name) => {
      const found = members.find((m) => m.name === name)
      if (found === undefined) throw new Error(`no member ${name}`)
      return found
    },
    ...jetStreamQueries(clusterName, () => members.filter((m) => m.running()).map((m) => m.url)),
    close
  }
}
