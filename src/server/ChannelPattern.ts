/**
 * Channel permission patterns, as carried in token claims: `run:*` matches `run:123`, `*` matches everything,
 * `{sub}` stands for the token's subject (`user:{sub}`). `*` matches any run of characters; nothing else is
 * special. Patterns are compiled once per authenticated user, not per check.
 */

export type Matcher = (channel: string) => boolean

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

export const compile = (patterns: ReadonlyArray<string>, subject: string | null): Matcher => {
  const exact = new Set<string>()
  const wild: Array<RegExp> = []
  for (const pattern of patterns) {
    if (pattern === "*") return () => true
    // `{sub}` is replaced by the subject as a literal: a subject containing `*` is not a wildcard
    const pieces = pattern.split("{sub}")
    if (pieces.length > 1 && subject === null) continue
    if (!pattern.includes("*")) {
      exact.add(pieces.join(subject ?? ""))
      continue
    }
    const source = pieces
      .map((piece) => piece.split("*").map(escapeRegExp).join(".*"))
      .join(escapeRegExp(subject ?? ""))
    wild.push(new RegExp(`^${source}$`))
  }
  return (channel) => exact.has(channel) || wild.some((r) => r.test(channel))
}

/** The personal channel of a user: a message published there reaches every connection of that user. */
export const personalChannel = (user: string): string => `user:${user}`

/** The channel every connection may read. */
export const broadcastChannel = "broadcast"
