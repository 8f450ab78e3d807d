/**
 * How a node's processes share its port. `primary`: node:cluster's round-robin — the primary accepts every
 * connection and passes it to the next process over IPC. `kernel`: every process listens on the port itself with
 * SO_REUSEPORT (`reusePort`, Node 22.12 and later, on Linux and FreeBSD — libuv refuses it elsewhere) and the
 * kernel spreads new connections over them; the primary only supervises. The supervisor picks one and tells each
 * process through BALANCING_ENV.
 */

export type Balancing = "kernel" | "primary"

/** The environment variable that tells a forked process how the port is shared. */
export const BALANCING_ENV = "TIDINGS_PROCESS_BALANCING"

/** Platforms where libuv sets SO_REUSEPORT with load balancing (elsewhere `reusePort` fails with ENOTSUP). */
const REUSEPORT_PLATFORMS: ReadonlySet<string> = new Set(["linux", "freebsd"])

/** Whether this Node has `reusePort` on `listen` (22.12+ of the 22 line, 23.1+) on a platform that balances with it. */
export const kernelBalancingAvailable = (
  version: string = process.versions.node,
  platform: string = process.platform
): boolean => {
  const [major = 0, minor = 0] = version.split(".").map(Number)
  const node = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12)
  return node && REUSEPORT_PLATFORMS.has(platform)
}

/**
 * The balancing to use: the one asked for, or the default — `kernel` where this Node has it, else `primary`.
 * Asking for `kernel` on a Node without it fails with a message naming the fix.
 */
export const resolve = (
  requested: Balancing | undefined,
  version: string = process.versions.node,
  platform: string = process.platform
): Balancing => {
  const available = kernelBalancingAvailable(version, platform)
  if (requested === "kernel" && !available) {
    throw new Error(
      `balancing "kernel" needs SO_REUSEPORT support in Node (22.12 or later, on Linux or FreeBSD); this is Node ${version} on ${platform}: use "primary"`
    )
  }
  return requested ?? (available ? "kernel" : "primary")
}

/**
 * The balancing a node listening on `port` gets. With port 0 every process would bind a random port of its own:
 * they share one socket the primary binds (node:cluster) instead, whatever was asked, which is `primary`.
 */
export const onPort = (balancing: Balancing, port: number): Balancing => (port === 0 ? "primary" : balancing)

/** The balancing a forked process was told to use (`primary` when not told). */
export const ofThisProcess = (): Balancing => (process.env[BALANCING_ENV] === "kernel" ? "kernel" : "primary")
