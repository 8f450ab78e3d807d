/**
 * The runtime of a protocol: compiled decoders and encoders per version, and the walk along migrations.
 *
 * Both ends use it. The server validates published events in the newest version, re-expresses a stored event
 * for an older client (decode → migrate down → encode), and lifts an older client's command to the newest
 * version; the client decodes events and replies and encodes commands in the version it speaks.
 * Decoders are built once per schema at start-up, never per message.
 *
 * Stored event data is JSON text in every case. What goes on the wire for a connection that negotiated MessagePack
 * is the same value with its Bytes fields as raw bytes (Bytes.ts): the `codec` parameters below choose it.
 */
import { Result, Schema } from "effect"
import { rawBytes } from "./Bytes.ts"
import type { Codec } from "./Negotiation.ts"
import type { AnyProtocol, CommandDef, ErasedMigration, PlainSchema, VersionDef } from "./Protocol.ts"
import { fromSchemaError, type SchemaProblem } from "./SchemaProblem.ts"

export type ProblemCode = "unknown_event" | "unknown_command" | "invalid_payload"

export interface Problem extends SchemaProblem {
  readonly code: ProblemCode
}

type Decode = (input: unknown) => Result.Result<unknown, Schema.SchemaError>
type Encode = (input: unknown) => Result.Result<unknown, Schema.SchemaError>

interface CompiledSchema {
  readonly decode: Decode
  readonly encode: Encode
}

const compile = (schema: PlainSchema): CompiledSchema => ({
  decode: Schema.decodeUnknownResult(schema),
  encode: Schema.encodeUnknownResult(schema)
})

interface CompiledCommand {
  readonly payload: CompiledSchema
  readonly result: CompiledSchema
  readonly error: CompiledSchema
}

interface CompiledVersion {
  readonly def: VersionDef
  readonly events: ReadonlyMap<string, CompiledSchema>
  readonly commands: ReadonlyMap<string, CompiledCommand>
}

export type ErasedReply = { name: string; ok: true; result: unknown } | { name: string; ok: false; error: unknown }

/**
 * Encodes with `schema`, Bytes fields raw for MessagePack (Bytes.ts); a value the schema refuses is an
 * `invalid_payload` problem at `field` (the frame field it was going into: data, payload, result, error).
 */
const encodeFor = (
  schema: CompiledSchema,
  value: unknown,
  codec: Codec,
  field: string
): Result.Result<unknown, Problem> => {
  const encoded = codec === "msgpack" ? rawBytes(() => schema.encode(value)) : schema.encode(value)
  return Result.isFailure(encoded)
    ? Result.fail({ code: "invalid_payload", ...fromSchemaError(encoded.failure, [field]) })
    : Result.succeed(encoded.success)
}

const problem = (code: ProblemCode, message: string, path: ReadonlyArray<string | number> = []): Problem => ({
  code,
  message,
  path
})

export class ProtocolCodec {
  readonly name: string
  readonly latest: number
  readonly versions: ReadonlyArray<number>
  private readonly compiled: ReadonlyMap<number, CompiledVersion>
  private readonly migrations: ReadonlyMap<number, ErasedMigration>
  private readonly latestValueEvents: ReadonlySet<string>

  constructor(protocol: AnyProtocol) {
    this.name = protocol.name
    this.versions = protocol.versions.map((v) => v.version)
    this.latest = protocol.latest.version
    const compiled = new Map<number, CompiledVersion>()
    for (const def of protocol.versions) {
      const events = new Map(Object.entries(def.events).map(([name, schema]) => [name, compile(schema)] as const))
      const commands = new Map(
        Object.entries(def.commands).map(
          ([name, c]: [string, CommandDef]) =>
            [name, { payload: compile(c.payload), result: compile(c.result), error: compile(c.error) }] as const
        )
      )
      compiled.set(def.version, { def, events, commands })
    }
    this.compiled = compiled
    // migrations keyed by the OLDER version of the pair
    this.migrations = new Map(protocol.migrations.map((m, i) => [protocol.versions[i]!.version, m] as const))
    this.latestValueEvents = new Set(protocol.latest.latestValue)
  }

  supports(version: number): boolean {
    return this.compiled.has(version)
  }

  /** Whether a newer value of this event supersedes older ones (conflation is allowed). */
  isLatestValue(event: string): boolean {
    return this.latestValueEvents.has(event)
  }

  eventNames(version: number = this.latest): ReadonlyArray<string> {
    return [...this.version(version).events.keys()]
  }

  commandNames(version: number = this.latest): ReadonlyArray<string> {
    return [...this.version(version).commands.keys()]
  }

  private version(version: number): CompiledVersion {
    const v = this.compiled.get(version)
    if (!v) throw new Error(`protocol ${this.name} has no version ${version}`)
    return v
  }

  // ---- events ------------------------------------------------------------------------------------------------

  /** Encodes a typed event value of `version` (default newest) to its JSON text, validating it. */
  encodeEvent(event: string, data: unknown, version: number = this.latest): Result.Result<string, Problem> {
    const schema = this.version(version).events.get(event)
    if (!schema) return Result.fail(problem("unknown_event", `unknown event "${event}" in ${this.name} v${version}`))
    const encoded = schema.encode(data)
    if (Result.isFailure(encoded)) {
      return Result.fail({ code: "invalid_payload", ...fromSchemaError(encoded.failure, ["data"]) })
    }
    return Result.succeed(JSON.stringify(encoded.success))
  }

  /** Decodes wire data (already JSON-parsed) of an event in `version` into its typed value. */
  decodeEvent(event: string, data: unknown, version: number = this.latest): Result.Result<unknown, Problem> {
    const schema = this.version(version).events.get(event)
    if (!schema) return Result.fail(problem("unknown_event", `unknown event "${event}" in ${this.name} v${version}`))
    const decoded = schema.decode(data)
    return Result.isFailure(decoded)
      ? Result.fail({ code: "invalid_payload", ...fromSchemaError(decoded.failure, ["data"]) })
      : Result.succeed(decoded.success)
  }

  /**
   * Re-expresses stored event data (JSON text in `from`) for a client speaking `to`.
   * Returns the event name and JSON text to send, or undefined when `to` does not receive this event.
   */
  translateEvent(
    event: string,
    dataJson: string,
    from: number,
    to: number
  ): Result.Result<{ readonly event: string; readonly data: string } | undefined, Problem> {
    if (from === to) return Result.succeed({ event, data: dataJson })
    const decoded = this.decodeEvent(event, JSON.parse(dataJson), from)
    if (Result.isFailure(decoded)) return Result.fail(decoded.failure)
    let current: { event: string; data: unknown } | undefined = { event, data: decoded.success }
    if (to < from) {
      for (let v = from - 1; v >= to && current; v--) current = this.migrations.get(v)!.eventDown(current)
    }
    // An older stored event shown to a newer client passes through unchanged when the newer schema accepts it.
    if (!current) return Result.succeed(undefined)
    const encoded = this.encodeEvent(current.event, current.data, to)
    return Result.isFailure(encoded)
      ? Result.fail(encoded.failure)
      : Result.succeed({ event: current.event, data: encoded.success })
  }

  /**
   * The wire value of an event's data for `codec`, from its JSON text in `version`: for JSON the parsed text, for
   * MessagePack the same value with Bytes fields as raw bytes (decoded and encoded again once per event).
   */
  eventData(event: string, dataJson: string, version: number, codec: Codec): Result.Result<unknown, Problem> {
    const parsed: unknown = JSON.parse(dataJson)
    if (codec === "json") return Result.succeed(parsed)
    const decoded = this.decodeEvent(event, parsed, version)
    if (Result.isFailure(decoded)) return decoded
    const schema = this.version(version).events.get(event)!
    return encodeFor(schema, decoded.success, codec, "data")
  }

  // ---- commands ----------------------------------------------------------------------------------------------

  /** Decodes a command sent by a client speaking `version` and lifts it to the newest version. */
  decodeCommand(
    name: string,
    payload: unknown,
    version: number
  ): Result.Result<{ readonly name: string; readonly payload: unknown }, Problem> {
    const command = this.version(version).commands.get(name)
    if (!command) {
      return Result.fail(problem("unknown_command", `unknown command "${name}" in ${this.name} v${version}`, ["name"]))
    }
    const decoded = command.payload.decode(payload)
    if (Result.isFailure(decoded)) {
      return Result.fail({ code: "invalid_payload", ...fromSchemaError(decoded.failure, ["payload"]) })
    }
    let current = { name, payload: decoded.success }
    for (let v = version; v < this.latest; v++) current = this.migrations.get(v)!.commandUp(current)
    return Result.succeed(current)
  }

  /** Encodes a typed command payload for the wire (client side). */
  encodeCommand(
    name: string,
    payload: unknown,
    version: number,
    codec: Codec = "json"
  ): Result.Result<unknown, Problem> {
    const command = this.version(version).commands.get(name)
    if (!command)
      return Result.fail(problem("unknown_command", `unknown command "${name}" in ${this.name} v${version}`))
    return encodeFor(command.payload, payload, codec, "payload")
  }

  /**
   * Takes a newest-version reply, migrates it down to `version`, and encodes it for the wire.
   * `name` is the newest-version command name the handler ran; `originalName` the one the client sent.
   */
  encodeReply(
    reply: ErasedReply,
    version: number,
    originalName: string,
    codec: Codec = "json"
  ): Result.Result<ErasedReply, Problem> {
    let current: ErasedReply = reply
    for (let v = this.latest - 1; v >= version; v--) current = this.migrations.get(v)!.replyDown(current)
    const command = this.version(version).commands.get(originalName)
    if (!command) return Result.fail(problem("unknown_command", `unknown command "${originalName}"`))
    if (current.ok) {
      return Result.map(encodeFor(command.result, current.result, codec, "result"), (result) => ({
        name: originalName,
        ok: true as const,
        result
      }))
    }
    return Result.map(encodeFor(command.error, current.error, codec, "error"), (error) => ({
      name: originalName,
      ok: false as const,
      error
    }))
  }

  /** Decodes a reply from the wire (client side). */
  decodeReply(name: string, reply: { ok: boolean; result?: unknown; error?: unknown }, version: number) {
    const command = this.version(version).commands.get(name)
    if (!command) return Result.fail(problem("unknown_command", `unknown command "${name}"`))
    const decoded = reply.ok ? command.result.decode(reply.result) : command.error.decode(reply.error)
    return Result.isFailure(decoded)
      ? Result.fail<Problem>({
          code: "invalid_payload",
          ...fromSchemaError(decoded.failure, [reply.ok ? "result" : "error"])
        })
      : Result.succeed({ ok: reply.ok, value: decoded.success })
  }
}

export const make = (protocol: AnyProtocol): ProtocolCodec => new ProtocolCodec(protocol)
