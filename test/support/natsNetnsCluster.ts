/**
 * A private 3-node (or n-node) `nats-server` cluster with JetStream whose servers each run in their own network
 * namespace (netns.ts), so that one can be cut off from the others and from the clients, then joined again — a
 * network partition, where natsCluster.ts (every server on 127.0.0.1) can only kill or freeze a process.
 *
 * Server i is `n<i>`, listens on its namespace's address (`netns.address(i)`) with the fixed ports 4222
 * (clients), 6222 (routes) and 8222 (monitoring) — the namespace is its own, so nothing else holds them — keeps
 * its store in its own temporary directory, and routes to every other member. Processes of the root namespace
 * reach it through the network's bridge. `isolate` / `heal` partition a server; `connectedTo(pid)` says which
 * servers a process of the root namespace holds a client connection to (from `ss`). `close` stops the servers and
 * removes their directories; removing the network is the caller's (after `close`).
 */
import { execFileSync } from "node:child_process"
import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { exitOf, hasExited, type Started, spawnUntilReady } from "./childProcesses.ts"
import { type JetStreamQueries, jetStreamQueries } from "./jetStreamApi.ts"
import type { Network } from "./netns.ts"

const CLIENT_PORT = 4222
const ROUTE_PORT = 6222
const MONITOR_PORT = 8222

export interface NetnsMember {
  /** Server name (`n0`, `n1`, …): what `$JS.API.STREAM.INFO` reports as `cluster.leader`. */
  readonly name: string
  readonly index: number
  /** `nats://<namespace address>:4222` */
  readonly url: string
  readonly running: () => boolean
  /** Whether its namespace is cut off now. */
  readonly isolated: () => boolean
  /** The last 20 kB of what it printed. */
  readonly log: () => string
  /** SIGKILL, waits for the exit; the store directory is kept. */
  readonly kill: () => Promise<void>
}

/** JetStream queries (jetStreamQueries) go through the running members not cut off. */
export interface NetnsNatsCluster extends JetStreamQueries {
  readonly members: ReadonlyArray<NetnsMember>
  /** Every member's client URL, comma-separated (the form NATS_URL takes). */
  readonly urls: string
  readonly member: (name: string) => NetnsMember
  /** Cuts the member's namespace off: it hears nothing from the other servers and the clients, nor they from it. */
  readonly isolate: (name: string) => void
  readonly heal: (name: string) => void
  /** Names of the members a process of the root namespace has an established client connection to. */
  readonly connectedTo: (pid: number) => ReadonlyArray<string>
  /** Stops every server (SIGKILL) and deletes the store directories. */
  readonly close: () => Promise<void>
}

/** Starts server `index` in its namespace; resolves once it printed "Server is ready". */
const launch = (
  binary: string,
  network: Network,
  index: number,
  args: ReadonlyArray<string>,
  readyTimeoutMs: number
): Promise<Started> => {
  const [command, ...rest] = network.wrap(index, [binary, ...args])
  const started = spawnUntilReady(command!, rest, {
    label: `nats-server n${index}`,
    readyLine: "Server is ready",
    readyTimeoutMs
  })
  return started.ready.then(() => started)
}

export const startNetnsNatsCluster = async (options: {
  readonly binary: string
  readonly network: Network
  readonly readyTimeoutMs?: number
}): Promise<NetnsNatsCluster> => {
  const { binary, network } = options
  const clusterName = `tidings-${randomUUID().slice(0, 8)}`
  const size = network.size
  const storeDirs = Array.from({ length: size }, (_, i) => mkdtempSync(join(tmpdir(), `tidings-netns-n${i}-`)))
  const processes: Array<Started | undefined> = []
  const argsOf = (i: number) => {
    const host = network.address(i)
    const routes = Array.from({ length: size }, (_, k) => k)
      .filter((k) => k !== i)
      .map((k) => `nats://${network.address(k)}:${ROUTE_PORT}`)
      .join(",")
    return [
      ...[
        "-a",
        host,
        "-p",
        String(CLIENT_PORT),
        "-m",
        String(MONITOR_PORT),
        "-n",
        `n${i}`,
        "-js",
        "-sd",
        storeDirs[i]!
      ],
      ...["--cluster_name", clusterName, "--cluster", `nats://${host}:${ROUTE_PORT}`, "--routes", routes]
    ]
  }

  const members: Array<NetnsMember> = Array.from({ length: size }, (_, i) => {
    const running = () => processes[i] !== undefined && !hasExited(processes[i]!.child)
    return {
      name: `n${i}`,
      index: i,
      url: `nats://${network.address(i)}:${CLIENT_PORT}`,
      running,
      isolated: () => network.isolated(i),
      log: () => processes[i]?.log() ?? "",
      kill: async () => {
        const child = processes[i]?.child
        if (child === undefined || hasExited(child)) return
        const gone = exitOf(child)
        child.kill("SIGCONT")
        child.kill("SIGKILL")
        await gone
      }
    }
  })
  const close = async () => {
    await Promise.all(members.map((m) => m.kill()))
    for (const dir of storeDirs) rmSync(dir, { recursive: true, force: true })
  }
  // every member at once: JetStream needs a quorum to elect its meta leader
  const started = await Promise.allSettled(
    members.map((_, i) => launch(binary, network, i, argsOf(i), options.readyTimeoutMs ?? 15_000))
  )
  started.forEach((result, i) => {
    if (result.status === "fulfilled") processes[i] = result.value
  })
  const failed = started.find((result) => result.status === "rejected")
  if (failed !== undefined) {
    await close()
    throw failed.reason
  }

  const member = (name: string) => {
    const found = members.find((m) => m.name === name)
    if (found === undefined) throw new Error(`no member ${name}`)
    return found
  }

  return {
    members,
    urls: members.map((m) => m.url).join(","),
    member,
    ...jetStreamQueries(clusterName, () => members.filter((m) => m.running() && !m.isolated()).map((m) => m.url)),
    isolate: (name) => network.isolate(member(name).index),
    heal: (name) => network.heal(member(name).index),
    connectedTo: (pid) => {
      const sockets = execFileSync("ss", ["-Htnp", "state", "established"], { encoding: "utf8", timeout: 5000 })
      return members
        .filter((m) =>
          sockets
            .split("\n")
            .some(
              (line) => line.includes(`${network.address(m.index)}:${CLIENT_PORT} `) && line.includes(`pid=${pid},`)
            )
        )
        .map((m) => m.name)
    },
    close
  }
}
