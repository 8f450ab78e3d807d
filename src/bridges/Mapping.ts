/**
 * A broker message → what to append: the tidings channel (from the bridge's template), the event name, its data
 * (wire form, validated later against the protocol) and an optional id for de-duplication. Pure; a message that
 * cannot be mapped gets the reason, which the bridge puts in its dead letter.
 */
import type { EventSource } from "./BridgeConfig.ts"

export interface MappingSpec {
  readonly channel: string
  readonly event: EventSource
  readonly data?: { readonly field: string } | undefined
  readonly id?: { readonly field: string } | undefined
}

/** Where a message came from: the wildcards its source matched ({1}, {2}…) and named values ({routingKey}). */
export interface MessageSource {
  readonly captures: ReadonlyArray<string>
  readonly names?: Readonly<Record<string, string>>
  /** An id the broker carries (an AMQP messageId), used when the mapping names no id field. */
  readonly brokerId?: string | undefined
}

export interface Mapped {
  readonly channel: string
  readonly event: string
  readonly data: unknown
  readonly id: string | undefined
}

export type MappingResult =
  | { readonly ok: true; readonly value: Mapped }
  | { readonly ok: false; readonly reason: string }

const fieldAt = (body: unknown, path: string): unknown => {
  let value: unknown = body
  for (const key of path.split(".")) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined
    value = (value as Record<string, unknown>)[key]
  }
  return value
}

const scalar = (value: unknown): string | undefined =>
  typeof value === "string" ? value : typeof value === "number" && Number.isFinite(value) ? String(value) : undefined

const placeholder = /\{([^{}]+)\}/g

/** Fills a template; the first placeholder without a value fails the mapping. */
const fill = (template: string, body: unknown, source: MessageSource): MappingResult | string => {
  let missing: string | undefined
  const filled = template.replace(placeholder, (_, name: string) => {
    const value = /^\d+$/.test(name)
      ? source.captures[Number(name) - 1]
      : (source.names?.[name] ?? scalar(fieldAt(body, name)))
    if (value === undefined || value === "") missing ??= name
    return value ?? ""
  })
  return missing === undefined
    ? filled
    : { ok: false, reason: `the channel template ${template} needs {${missing}}, which this message does not have` }
}

/** Maps a message's text. */
export const map = (spec: MappingSpec, text: string, source: MessageSource): MappingResult => {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return { ok: false, reason: "the message is not JSON" }
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return { ok: false, reason: "the message is not a JSON object" }
  }
  const channel = fill(spec.channel, body, source)
  if (typeof channel !== "string") return channel
  const event = "name" in spec.event ? spec.event.name : scalar(fieldAt(body, spec.event.field))
  if (event === undefined || event === "") {
    return {
      ok: false,
      reason: `the message has no event name in field ${"field" in spec.event ? spec.event.field : ""}`
    }
  }
  const data = spec.data === undefined ? body : fieldAt(body, spec.data.field)
  if (data === undefined) return { ok: false, reason: `the message has no data field ${spec.data?.field}` }
  // an empty id is no id: as an idempotency key it would make every later message of the channel a duplicate
  const rawId = spec.id === undefined ? source.brokerId : scalar(fieldAt(body, spec.id.field))
  const id = rawId === "" ? undefined : rawId
  if (spec.id !== undefined && id === undefined) {
    return { ok: false, reason: `the message has no id in field ${spec.id.field}` }
  }
  return { ok: true, value: { channel, event, data, id } }
}

/** The wildcards a Redis glob pattern (`*`, `?`) matched in `name`, in order; undefined when it does not match. */
export const globCaptures = (pattern: string, name: string): ReadonlyArray<string> | undefined => {
  let source = "^"
  for (const char of pattern) {
    if (char === "*") source += "(.*?)"
    else if (char === "?") source += "(.)"
    else source += char.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  }
  const match = new RegExp(`${source}$`, "s").exec(name)
  return match === null ? undefined : match.slice(1)
}
