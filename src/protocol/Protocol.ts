/**
 * The catalog DSL: how an application declares its protocol.
 *
 * A protocol has a name and numbered versions. Each version is a set of named events (server → client) and
 * named commands (client → server, each with payload, result and error schemas). Adjacent versions are joined
 * by a migration that moves events down to the older version, commands up to the newer one, and replies back
 * down. The server always speaks the newest version internally; clients speak the version they negotiated.
 *
 * This module owns the types and the builder; the runtime codec lives in ProtocolCodec.ts.
 */
import type { Schema } from "effect"

/** A schema that needs no services to decode or encode, so it can run on the hot path. */
export type PlainSchema = Schema.Codec<unknown, unknown>

export interface CommandDef<
  Payload extends PlainSchema = PlainSchema,
  Result extends PlainSchema = PlainSchema,
  Error extends PlainSchema = PlainSchema
> {
  readonly payload: Payload
  readonly result: Result
  readonly error: Error
}

/** Declares a command; a helper only for inference. */
export const command = <Payload extends PlainSchema, Result extends PlainSchema, Error extends PlainSchema>(def: {
  readonly payload: Payload
  readonly result: Result
  readonly error: Error
}): CommandDef<Payload, Result, Error> => def

export interface VersionDef<
  N extends number = number,
  Events extends Record<string, PlainSchema> = Record<string, PlainSchema>,
  Commands extends Record<string, CommandDef> = Record<string, CommandDef>
> {
  readonly version: N
  readonly events: Events
  readonly commands: Commands
  /**
   * Events whose newest value supersedes the previous ones (a screenshot stream, say). A slow reader of such an
   * event may get only the latest value instead of every intermediate one (conflation). (Typed as string[] so
   * that VersionDef stays covariant in its events; `version()` checks the names.)
   */
  readonly latestValue: ReadonlyArray<string>
}

/** Declares one version of a protocol. */
export const version = <
  const N extends number,
  const Events extends Record<string, PlainSchema>,
  const Commands extends Record<string, CommandDef>
>(def: {
  readonly version: N
  readonly events: Events
  readonly commands: Commands
  readonly latestValue?: ReadonlyArray<keyof Events & string>
}): VersionDef<N, Events, Commands> => ({ ...def, latestValue: def.latestValue ?? [] })

// ---- type-level views of a version ------------------------------------------------------------------------

export type EventName<V extends VersionDef> = keyof V["events"] & string
export type EventData<V extends VersionDef, K extends EventName<V>> = V["events"][K]["Type"]
/** One event of a version as a discriminated union: `{ event: "step_update", data: {...} }`. */
export type EventOf<V extends VersionDef> = {
  readonly [K in EventName<V>]: { readonly event: K; readonly data: EventData<V, K> }
}[EventName<V>]

export type CommandName<V extends VersionDef> = keyof V["commands"] & string
export type CommandPayload<V extends VersionDef, K extends CommandName<V>> = V["commands"][K]["payload"]["Type"]
export type CommandResult<V extends VersionDef, K extends CommandName<V>> = V["commands"][K]["result"]["Type"]
export type CommandError<V extends VersionDef, K extends CommandName<V>> = V["commands"][K]["error"]["Type"]
export type CommandOf<V extends VersionDef> = {
  readonly [K in CommandName<V>]: { readonly name: K; readonly payload: CommandPayload<V, K> }
}[CommandName<V>]
export type ReplyOf<V extends VersionDef> = {
  readonly [K in CommandName<V>]:
    | { readonly name: K; readonly ok: true; readonly result: CommandResult<V, K> }
    | { readonly name: K; readonly ok: false; readonly error: CommandError<V, K> }
}[CommandName<V>]

/** How to move between two adjacent versions: `Old` is version N, `New` is version N + 1. */
export interface Migration<Old extends VersionDef, New extends VersionDef> {
  /** The newer event as an older client sees it; `undefined` means older clients do not receive it. */
  readonly eventDown: (event: EventOf<New>) => EventOf<Old> | undefined
  /** An older client's command as the newer handlers run it. */
  readonly commandUp: (command: CommandOf<Old>) => CommandOf<New>
  /** A newer reply as the older caller expects it. */
  readonly replyDown: (reply: ReplyOf<New>) => ReplyOf<Old>
}

/** The untyped view of a migration that the runtime walks; user code never sees it. */
export interface ErasedMigration {
  readonly eventDown: (event: { event: string; data: unknown }) => { event: string; data: unknown } | undefined
  readonly commandUp: (command: { name: string; payload: unknown }) => { name: string; payload: unknown }
  readonly replyDown: (
    reply: { name: string; ok: true; result: unknown } | { name: string; ok: false; error: unknown }
  ) => { name: string; ok: true; result: unknown } | { name: string; ok: false; error: unknown }
}

/** The data of a protocol, without its builder: what servers and clients accept (covariant in its versions). */
export interface ProtocolData<Name extends string, Latest extends VersionDef, All extends VersionDef> {
  readonly name: Name
  readonly latest: Latest
  /** Versions from oldest to newest. */
  readonly versions: ReadonlyArray<VersionDef>
  /** `migrations[i]` joins `versions[i]` and `versions[i + 1]`. */
  readonly migrations: ReadonlyArray<ErasedMigration>
  /** Type-level only: the union of every live version. */
  readonly "~versions"?: All
}

/**
 * A protocol: `Latest` is the version the server speaks, `All` the union of every live version.
 * Build one with `make(name, firstVersion)` and then `.evolve(nextVersion, migration)` per later version.
 */
export interface Protocol<Name extends string, Latest extends VersionDef, All extends VersionDef>
  extends ProtocolData<Name, Latest, All> {
  readonly evolve: <Next extends VersionDef>(
    next: Next,
    migration: Migration<Latest, Next>
  ) => Protocol<Name, Next, All | Next>
}

export type AnyProtocol = ProtocolData<string, VersionDef, VersionDef>
export type LatestOf<P> = P extends { readonly latest: infer L extends VersionDef } ? L : never
export type AllVersionsOf<P> = P extends { readonly "~versions"?: infer All extends VersionDef } ? All : never
export type VersionOf<P, N extends number> = Extract<AllVersionsOf<P>, { readonly version: N }>
export type VersionNumber<P> = AllVersionsOf<P>["version"]

const build = <Name extends string, Latest extends VersionDef, All extends VersionDef>(
  name: Name,
  versions: ReadonlyArray<VersionDef>,
  migrations: ReadonlyArray<ErasedMigration>
): Protocol<Name, Latest, All> => ({
  name,
  latest: versions[versions.length - 1] as Latest,
  versions,
  migrations,
  evolve: <Next extends VersionDef>(next: Next, migration: Migration<Latest, Next>) => {
    const previous = versions[versions.length - 1]!
    if (next.version !== previous.version + 1) {
      throw new Error(`protocol ${name}: version ${next.version} must follow ${previous.version} directly`)
    }
    return build<Name, Next, All | Next>(
      name,
      [...versions, next],
      [...migrations, migration as unknown as ErasedMigration]
    )
  }
})

/** Starts a protocol at its first live version. */
export const make = <const Name extends string, First extends VersionDef>(
  name: Name,
  first: First
): Protocol<Name, First, First> => {
  if (!/^[a-z][a-z0-9_-]{0,31}$/.test(name)) {
    throw new Error(`protocol name "${name}" must be lowercase letters, digits, - or _ (it appears in subprotocols)`)
  }
  return build<Name, First, First>(name, [first], [])
}
