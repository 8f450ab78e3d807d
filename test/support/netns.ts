/**
 * A private network of Linux network namespaces for partition tests, made with iproute2 (`ip`): one bridge in the
 * root namespace holding `10.a.b.1/24`, and `size` namespaces, each joined to the bridge by a veth pair and
 * holding `10.a.b.(11 + i)` on its `eth0`. A process started in namespace i (`wrap(i, argv)`) reaches the others
 * and the root namespace's processes through the bridge, and processes of the root namespace (the test, tidings
 * nodes) reach it at `address(i)`. `isolate(i)` sets the root side of i's veth down: packets to and from i are
 * dropped, nothing is reset (TCP connections stay open and retransmit), as in a real partition; `heal(i)` sets it
 * up again.
 *
 * Names carry the test process's pid and a counter (`tidings-<pid>-<k>-<i>`, `tdb<pid>k<k>`, …), so parallel runs
 * never collide, and the subnet is chosen so that no existing route of the machine covers it. `destroy` removes
 * links and namespaces; so does the exit hook, whatever happened; and `makeNetwork` first removes what a run
 * killed before its cleanup left behind (names whose pid no longer runs). Whether `ip netns` may be used here is
 * `requireNetns`'s call. Starting and stopping the processes inside is the caller's.
 */
import { execFileSync } from "node:child_process"

export interface Network {
  readonly size: number
  /** `10.a.b.1`: the bridge's address in the root namespace. */
  readonly gateway: string
  /** `10.a.b.(11 + i)`: namespace i's address. */
  readonly address: (i: number) => string
  /** Namespace i's name, for `ip netns exec`. */
  readonly namespace: (i: number) => string
  /** `argv` run inside namespace i (`ip netns exec <ns> …`; the program replaces `ip`, so signals reach it). */
  readonly wrap: (i: number, argv: ReadonlyArray<string>) => ReadonlyArray<string>
  /** Cuts namespace i off from the bridge (the others and the root namespace): packets are dropped. */
  readonly isolate: (i: number) => void
  /** Joins namespace i to the bridge again. */
  readonly heal: (i: number) => void
  /** Whether namespace i is cut off now. */
  readonly isolated: (i: number) => boolean
  /** Removes the bridge, veth pairs and namespaces (idempotent). Stop the processes inside first. */
  readonly destroy: () => void
}

const ip = (...args: ReadonlyArray<string>): string =>
  execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 10_000 })
const quietly = (run: () => unknown) => {
  try {
    run()
  } catch {
    // already gone
  }
}

/** Whether this process may create a network namespace (root, or CAP_SYS_ADMIN and CAP_NET_ADMIN), and why not. */
export const netnsPermitted = (): { readonly ok: boolean; readonly reason: string } => {
  const probe = `tidings-probe-${process.pid}`
  try {
    ip("netns", "add", probe)
    ip("netns", "del", probe)
    return { ok: true, reason: "" }
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim()
    return { ok: false, reason: stderr || (error instanceof Error ? error.message : String(error)) }
  }
}

/** True when network namespaces can be used; otherwise a visible skip locally, and a failure under CI=true. */
export const requireNetns = (suite: string): boolean => {
  const { ok, reason } = netnsPermitted()
  if (ok) return true
  const line = `${suite}: network namespaces are not permitted here (ip netns add: ${reason})`
  if (process.env.CI === "true") throw new Error(`${line}; CI runs as root and must run this suite`)
  process.stderr.write(`\n  SKIPPED ${line} — run as root (or with CAP_SYS_ADMIN and CAP_NET_ADMIN)\n\n`)
  return false
}

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** Removes namespaces and bridges of earlier runs whose process is gone (a run killed before its cleanup). */
const sweepStale = () => {
  const namespaces = ip("netns", "list")
    .split("\n")
    .map((line) => line.split(" ")[0]!)
  for (const ns of namespaces) {
    const pid = /^tidings-(\d+)-\d+-\d+$/.exec(ns)?.[1]
    if (pid !== undefined && !pidAlive(Number(pid))) quietly(() => ip("netns", "del", ns))
  }
  for (const line of ip("-o", "link", "show").split("\n")) {
    const name = /^\d+: (td[bv](\d+)k\d+(?:x\d+)?)[@:]/.exec(line)
    if (name !== null && !pidAlive(Number(name[2]))) quietly(() => ip("link", "del", name[1]!))
  }
}

/** A /24 in 10.0.0.0/8 that no route of the root namespace mentions yet, derived from the pid. */
const freeSubnet = (): string => {
  const routes = ip("-4", "route", "show", "table", "all")
  for (let k = 0; k < 256; k++) {
    const seed = (process.pid + k * 7919) % 60_000
    const prefix = `10.${100 + (Math.floor(seed / 256) % 150)}.${seed % 256}`
    if (!routes.includes(`${prefix}.`)) return prefix
  }
  throw new Error("no free 10.x.y.0/24 subnet for the test network")
}

const cleanups = new Set<() => void>()
let hooked = false
const hookExit = () => {
  if (hooked) return
  hooked = true
  process.on("exit", () => {
    for (const cleanup of cleanups) cleanup()
  })
}

let counter = 0

/** Creates the bridge and `size` namespaces joined to it (everything removed again if a step fails). */
export const makeNetwork = (size: number): Network => {
  hookExit()
  sweepStale()
  const id = `${process.pid}k${counter++}`
  const bridge = `tdb${id}`
  const outer = (i: number) => `tdv${id}x${i}`
  const inner = (i: number) => `tdp${id}x${i}`
  const namespace = (i: number) => `tidings-${id.replace("k", "-")}-${i}`
  const prefix = freeSubnet()
  const gateway = `${prefix}.1`
  const address = (i: number) => `${prefix}.${11 + i}`
  const down = new Set<number>()

  let destroyed = false
  const destroy = () => {
    if (destroyed) return
    destroyed = true
    cleanups.delete(destroy)
    for (let i = 0; i < size; i++) {
      // deleting one end of a veth pair deletes both; the namespace goes once no process holds it
      quietly(() => ip("link", "del", outer(i)))
      quietly(() => ip("netns", "del", namespace(i)))
    }
    quietly(() => ip("link", "del", bridge))
  }
  cleanups.add(destroy)

  try {
    ip("link", "add", bridge, "type", "bridge")
    ip("addr", "add", `${gateway}/24`, "dev", bridge)
    ip("link", "set", bridge, "up")
    for (let i = 0; i < size; i++) {
      const ns = namespace(i)
      ip("netns", "add", ns)
      ip("link", "add", outer(i), "type", "veth", "peer", "name", inner(i))
      ip("link", "set", inner(i), "netns", ns)
      ip("-n", ns, "link", "set", inner(i), "name", "eth0")
      ip("-n", ns, "addr", "add", `${address(i)}/24`, "dev", "eth0")
      ip("-n", ns, "link", "set", "eth0", "up")
      ip("-n", ns, "link", "set", "lo", "up")
      ip("link", "set", outer(i), "master", bridge)
      ip("link", "set", outer(i), "up")
    }
  } catch (error) {
    destroy()
    throw error
  }

  return {
    size,
    gateway,
    address,
    namespace,
    wrap: (i, argv) => ["ip", "netns", "exec", namespace(i), ...argv],
    isolate: (i) => {
      ip("link", "set", outer(i), "down")
      down.add(i)
    },
    heal: (i) => {
      ip("link", "set", outer(i), "up")
      down.delete(i)
    },
    isolated: (i) => down.has(i),
    destroy
  }
}
