/**
 * The bridges' configuration file (JSON), as an Effect Schema checked at start: which broker each bridge reads,
 * how a message becomes a tidings channel, event and data, and where bad messages are set aside. `load` reads and
 * checks a file and fails with one line per problem, naming its path in the file (`bridges[0].name: …`).
 */
import { readFileSync } from "node:fs"
import { Effect, Schema } from "effect"

const Name = Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_-]{1,64}$/)).annotate({
  description: "The bridge's name in logs and metrics: letters, digits, - and _"
})

/** A template such as `client:{1}` ({1}: the first wildcard of the pattern) or `request:{requestId}` (a field). */
const Template = Schema.String.check(Schema.isMinLength(1)).annotate({
  description:
    "A tidings channel name with placeholders: {1}, {2}… for the wildcards the message's source matched, " +
    "{routingKey} for an AMQP routing key, and {field} or {a.b} for fields of the message's JSON body"
})

const FieldPath = Schema.String.check(Schema.isPattern(/^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/))

export const EventSource = Schema.Union([
  Schema.Struct({ field: FieldPath }).annotate({ description: "The event name is this field of the message" }),
  Schema.Struct({ name: Schema.String.check(Schema.isMinLength(1)) }).annotate({
    description: "Every message is this event"
  })
])
export type EventSource = typeof EventSource.Type

/** How every kind of bridge maps a message. */
const mappingFields = {
  name: Name,
  url: Schema.String,
  channel: Template,
  event: EventSource,
  /** The event's data: this field of the message; omitted, the whole message (its event field included). */
  data: Schema.optionalKey(Schema.Struct({ field: FieldPath })),
  /** A message id for de-duplication: this field of the message (AMQP default: the messageId property). */
  id: Schema.optionalKey(Schema.Struct({ field: FieldPath }))
}

export const RedisPubSubBridge = Schema.Struct({
  kind: Schema.tag("redis-pubsub"),
  ...mappingFields,
  /** PSUBSCRIBE patterns, e.g. `app:out:*`. */
  patterns: Schema.Array(Schema.String.check(Schema.isMinLength(1))).check(Schema.isMinLength(1)),
  /** The Redis stream bad messages are added to (default `tidings:dead-letters:<name>`), capped at 10,000. */
  deadLetters: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1)))
})
export type RedisPubSubBridge = typeof RedisPubSubBridge.Type

export const AmqpBridge = Schema.Struct({
  kind: Schema.tag("amqp"),
  ...mappingFields,
  /** The exchange the workers publish to (declared if missing, durable). */
  exchange: Schema.String.check(Schema.isMinLength(1)),
  exchangeType: Schema.optionalKey(Schema.Literals(["topic", "direct", "fanout"])),
  /** The bridge's queue (durable), bound to the exchange with `bindings`. */
  queue: Schema.String.check(Schema.isMinLength(1)),
  bindings: Schema.Array(Schema.String).check(Schema.isMinLength(1)),
  /** Messages in flight (unacknowledged) at once; default 1,000. */
  prefetch: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65_535 }))),
  /** The queue bad messages are sent to (default `<queue>.dead-letters`). */
  deadLetters: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1)))
})
export type AmqpBridge = typeof AmqpBridge.Type

export const BridgeSpec = Schema.Union([RedisPubSubBridge, AmqpBridge])
export type BridgeSpec = typeof BridgeSpec.Type

export const BridgesFile = Schema.Struct({
  bridges: Schema.Array(BridgeSpec).check(Schema.isMinLength(1))
}).annotate({ identifier: "BridgesFile" })
export type BridgesFile = typeof BridgesFile.Type

/** The configuration file could not be read or does not match the schema. */
export class BridgeConfigError extends Schema.TaggedError<BridgeConfigError>()("BridgeConfigError", {
  message: Schema.String
}) {}

const decode = Schema.decodeUnknownResult(BridgesFile)

/** Schema's "message\n  at [path]" pairs as one line per problem: `  bridges[0].name: message`. */
const problems = (message: string): string => {
  const lines = message.split("\n")
  const out: Array<string> = []
  for (let i = 0; i < lines.length; i++) {
    const at = /^\s+at (.*)$/.exec(lines[i + 1] ?? "")
    const path = at ? at[1]!.replace(/\["([^"]+)"\]/g, ".$1").replace(/^\./, "") : ""
    out.push(`  ${path === "" ? "" : `${path}: `}${lines[i]}`)
    if (at) i++
  }
  return out.join("\n")
}

/** Checks a parsed configuration; names are unique. */
export const parse = (
  value: unknown,
  source = "bridges configuration"
): Effect.Effect<BridgesFile, BridgeConfigError> =>
  Effect.suspend(() => {
    const decoded = decode(value, { errors: "all" })
    if (decoded._tag === "Failure") {
      return Effect.fail(new BridgeConfigError({ message: `${source}:\n${problems(decoded.failure.message)}` }))
    }
    const names = decoded.success.bridges.map((b) => b.name)
    const repeated = names.find((name, i) => names.indexOf(name) !== i)
    if (repeated !== undefined) {
      return Effect.fail(new BridgeConfigError({ message: `${source}: two bridges are named ${repeated}` }))
    }
    return Effect.succeed(decoded.success)
  })

/** Reads and checks a JSON configuration file. */
export const load = (path: string): Effect.Effect<BridgesFile, BridgeConfigError> =>
  Effect.suspend(() => {
    let value: unknown
    try {
      value = JSON.parse(readFileSync(path, "utf8"))
    } catch (error) {
      return Effect.fail(
        new BridgeConfigError({ message: `${path}: ${error instanceof Error ? error.message : String(error)}` })
      )
    }
    return parse(value, path)
  })
