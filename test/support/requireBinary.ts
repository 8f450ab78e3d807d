/**
 * Decides whether a suite that needs an external server binary (redis-server, nats-server) runs.
 *
 * Present: run. Missing locally: skip, with a visible line on stderr. Missing under CI (`CI=true`): fail, so a
 * broker suite can never turn green by not running.
 */
import { execFileSync } from "node:child_process"

export const findBinary = (name: string): string | undefined => {
  for (const candidate of [name, `/usr/sbin/${name}`, `/usr/bin/${name}`, `/usr/local/bin/${name}`]) {
    try {
      execFileSync(candidate, ["--version"], { stdio: "ignore", timeout: 5000 })
      return candidate
    } catch {
      // try the next location
    }
  }
  return undefined
}

/** Returns the binary's path, or undefined after announcing the skip; throws under CI. */
export const requireBinary = (name: string, suite: string): string | undefined => {
  const path = findBinary(name)
  if (path) return path
  const line = `${suite}: ${name} not found on this machine`
  if (process.env.CI === "true")
    throw new Error(`${line}; CI must run every broker suite (install it: apt-get install -y ${name})`)
  process.stderr.write(`\n  SKIPPED ${line} — install it to run this suite (apt-get install -y ${name})\n\n`)
  return undefined
}
