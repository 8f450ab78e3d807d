/**
 * Channel permission patterns, as carried in token claims: `run:*` matches `run:123`, `*` matches everything,
 * `{sub}` stands for the token's subject (`user:{sub}`). `*` matches any run of characters; nothing else is
 * special. Patterns are compiled once per distinct list and shared by the identities holding it (once per user when
 * the list mentions `{sub}`), never per check; wildcard patterns are compiled once per distinct pattern and shared.
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

const always: Matcher = () => true
/** Matches nothing. */
export const never: Matcher = () => false

const build = (list: ReadonlyArray<string>, subject: string | null): Matcher => {
  const exact: Array<string> = []
  const wild: Array<RegExp> = []
  for (const pattern of list) {
    if (pattern === "*") return always
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
  if (exact.length === 0 && wild.length === 0) return never
  if (wild.length === 0 && exact.length === 1) {
    const only = exact[0]
    return (channel) => channel === only
  }
  // tokens carry a handful of patterns: an array beats a Set in memory and, at this size, in speed
  const exactSet = exact.length > 16 ? new Set(exact) : undefined
  return exactSet
    ? (channel) => exactSet.has(channel) || wild.some((r) => r.test(channel))
    : (channel) => exact.includes(channel) || wild.some((r) => r.test(channel))
}

/**
 * Matchers of pattern lists that do not mention `{sub}`, shared by every identity with the same list (the usual
 * case: one role, one list), so an identity costs no arrays or closures of its own for them.
 */
const shared = new GenerationCache<string, Matcher>(1024)

export const compile = (list: ReadonlyArray<string>, subject: string | null): Matcher => {
  if (list.length === 0) return never
  if (list.some((pattern) => pattern.includes("{sub}"))) return build(list, subject)
  // JSON, not a join: no list can spell another list's key, whatever characters its patterns hold
  const key = JSON.stringify(list)
  let matcher = shared.get(key)
  if (matcher === undefined) {
    matcher = build(list, null)
    shared.set(key, matcher)
  }
  return matcher
}

/** The personal channel of a user (`user:<sub>`) reaches every connection of that user. */
const personalPrefix = "user:"

/** Whether `channel` is `user`'s personal channel, without building that name. */
export const isPersonalChannel = (channel: string, user: string): boolean =>
  channel.length === personalPrefix.length + user.length && channel.startsWith(personalPrefix) && channel.endsWith(user)

/** The channel every connection may read. */
export const broadcastChannel = "broadcast"
