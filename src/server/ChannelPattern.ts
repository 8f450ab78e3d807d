/**
 * Channel permission patterns, as carried in token claims: `run:*` matches `run:123`, `*` matches everything,
 * `{sub}` stands for the token's subject (`user:{sub}`). `*` matches any run of characters; nothing else is
 * special. Patterns are compiled once per authenticated user, not per check; wildcard patterns are compiled once per
 * distinct pattern and shared.
 */
import { GenerationCache } from "./GenerationCache.ts"

export type Matcher = (channel: string) => boolean

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/**
 * Compiled wildcard patterns by regular-expression source, shared by every identity with the same pattern (a
 * RegExp object carries its own compiled code, about half a KiB each).
 */
const patterns = new GenerationCache<string, RegExp>(4096)

const regExpFor = (source: string): RegExp => {
  let regExp = patterns.get(source)
  if (regExp === undefined) {
    regExp = new RegExp(source)
    patterns.set(source, regExp)
  }
  return regExp
}

export const compile = (patterns: ReadonlyArray<string>, subject: string | null): Matcher => {
  const exact: Array<string> = []
  const wild: Array<RegExp> = []
  for (const pattern of patterns) {
    if (pattern === "*") return () => true
    // `{sub}` is replaced by the subject as a literal: a subject containing `*` is not a wildcard
    const pieces = pattern.split("{sub}")
    if (pieces.length > 1 && subject === null) continue
    if (!pattern.includes("*")) {
      exact.push(pieces.join(subject ?? ""))
      continue
    }
    const source = pieces
      .map((piece) => piece.split("*").map(escapeRegExp).join(".*"))
      .join(escapeRegExp(subject ?? ""))
    wild.push(regExpFor(`^${source}$`))
  }
  // tokens carry a handful of patterns: an array beats a Set in memory and, at this size, in speed
  const exactSet = exact.length > 16 ? new Set(exact) : undefined
  return exactSet
    ? (channel) => exactSet.has(channel) || wild.some((r) => r.test(channel))
    : (channel) => exact.includes(channel) || wild.some((r) => r.test(channel))
}

/** The personal channel of a user: a message published there reaches every connection of that user. */
export const personalChannel = (user: string): string => `user:${user}`

/** The channel every connection may read. */
export const broadcastChannel = "broadcast"
