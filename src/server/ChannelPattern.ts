/**
 * Channel permission patterns, as carried in token claims: `run:*` matches `run:123`, `*` matches everything,
 * `{sub}` stands for the token's subject (`user:{sub}`). `*` matches any run of characters; nothing else is
 * special. Patterns are compiled once per authenticated user, not per check.
 */

export type Matcher = (channel: string) => boolean

const escapeRegExp = (s: string) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")

export const compile = (patterns: ReadonlyArray<string>, subject: string | null): Matcher => {
  const concrete = patterns.map((p) => (subject === null ? p : p.replaceAll("{sub}", subject)))
  if (concrete.includes("*")) return () => true
  const exact = new Set(concrete.filter((p) => !p.includes("*") && !p.includes("{sub}")))
  const wild = concrete
    .filter((p) => p.includes("*") && !p.includes("{sub}"))
    .map((p) => new RegExp(`^${p.split("*").map(escapeRegExp).join(".*")}$`))
  return (channel) => exact.has(channel) || wild.some((r) => r.test(channel))
}

/** The personal channel of a user: a message published there reaches every connection of that user. */
export const personalChannel = (user: string): string => `user:${user}`

/** The channel every connection may read. */
export const broadcastChannel = "broadcast"
