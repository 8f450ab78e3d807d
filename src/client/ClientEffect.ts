/**
 * The client's Effect API: a scoped client whose events are Streams and whose commands are Effects with
 * typed errors. Closing the scope closes the client.
 *
 * It is a thin layer over the Promise client (Client.ts), which owns the connection, reconnects, positions
 * and acks. Acks follow the streams' buffers: an event counts as processed once its stream accepted it, and
 * when a stream's buffer (`bufferSize`) is full, delivery on that channel waits for the consumer, so acks
 * never run ahead of what the consumer can still receive.
 */
import { Cause, Effect, Queue, type Scope, Stream } from "effect"
import type { Position } from "../protocol/Position.ts"
import type {
  AnyProtocol,
  CommandName,
  CommandPayload,
  CommandResult,
  CommandError as CommandTypedError,
  EventData,
  EventName,
  VersionDef,
  VersionNumber,
  VersionOf
} from "../protocol/Protocol.ts"
import * as Client from "./Client.ts"
import {
  CommandFailed,
  type CommandFailure,
  CommandRejected,
  CommandTimeout,
  Disconnected,
  ProtocolViolation,
  type TerminalError
} from "./errors.ts"

export interface StreamOptions {
  /** Events buffered for a slow consumer before delivery (and acks) on the channel wait. Default 1024. */
  readonly bufferSize?: number | undefined
}

export interface ClientEffect<V extends VersionDef> {
  /** The Promise client underneath, for what this API does not cover. */
  readonly client: Client.Client<V>
  readonly state: Effect.Effect<Client.ClientState>
  /** The current state, then every change; ends after "closed". */
  readonly states: Stream.Stream<Client.ClientState>
  /** Succeeds once the client is open; fails if it closes first. */
  readonly ready: Effect.Effect<Client.WelcomeInfo, TerminalError>
  /**
   * Subscribes to `channel` for as long as the stream runs, and emits its events and resets in order. Ends
   * when the client is closed, fails with the terminal error that closed it.
   */
  readonly events: (
    channel: string,
    options?: StreamOptions & { readonly since?: Position | undefined }
  ) => Stream.Stream<Client.ReceivedEvent<V> | Client.ResetNotice, TerminalError>
  /** One event type, on every channel the client receives (subscribe with `events` or `client.subscribe`). */
  readonly on: <K extends EventName<V>>(
    event: K,
    options?: StreamOptions
  ) => Stream.Stream<{ readonly data: EventData<V, K>; readonly meta: Client.EventMeta }, TerminalError>
  /** Resets on every channel. */
  readonly resets: Stream.Stream<Client.ResetNotice, TerminalError>
  /**
   * Sends a command; fails with CommandFailed carrying the command's typed error, or with CommandRejected,
   * CommandTimeout, Disconnected or ProtocolViolation. Never retried automatically (see Client.command).
   * Interrupting it stops waiting for the reply; the server may still run the command.
   */
  readonly command: <K extends CommandName<V>>(
    name: K,
    payload: CommandPayload<V, K>,
    options?: { readonly timeoutMs?: number | undefined }
  ) => Effect.Effect<CommandResult<V, K>, CommandFailure<CommandTypedError<V, K>>>
  readonly close: Effect.Effect<void>
}

/** Creates a client for the scope's lifetime; it starts connecting at once. */
export const make = <P extends AnyProtocol, const N extends VersionNumber<P>>(
  protocol: P,
  options: Client.ClientOptions<N>
): Effect.Effect<ClientEffect<VersionOf<P, N>>, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => Client.make(protocol, options)),
      (client) => Effect.sync(() => client.close())
    ),
    fromClient
  )

/** The Effect API over an existing Promise client (closing it stays the caller's job). */
export const fromClient = <V extends VersionDef>(client: Client.Client<V>): ClientEffect<V> => {
  const stream = <A>(register: (emit: (a: A) => PromiseLike<void> | undefined) => () => void, bufferSize?: number) =>
    streamFrom(client, register, bufferSize)
  return {
    client,
    state: Effect.sync(() => client.state),
    states: Stream.callback<Client.ClientState>((queue) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          Queue.offerUnsafe(queue, client.state)
          if (client.state === "closed") {
            Queue.endUnsafe(queue)
            return () => {}
          }
          return client.onState((state) => {
            Queue.offerUnsafe(queue, state)
            if (state === "closed") Queue.endUnsafe(queue)
          })
        }),
        (off) => Effect.sync(off)
      )
    ),
    ready: Effect.callback<Client.WelcomeInfo, TerminalError>((resume) => {
      client.ready().then(
        (welcome) => resume(Effect.succeed(welcome)),
        (error: unknown) => resume(isTerminal(error) ? Effect.fail(error) : Effect.die(error))
      )
    }),
    events: (channel, options = {}) =>
      stream<Client.ReceivedEvent<V> | Client.ResetNotice>((emit) => {
        const sub = client.subscribe(channel, { since: options.since, onEvent: emit, onReset: emit })
        return sub.unsubscribe
      }, options.bufferSize),
    on: (event, options = {}) =>
      stream((emit) => client.on(event, (data, meta) => emit({ data, meta })), options.bufferSize),
    resets: stream<Client.ResetNotice>((emit) => client.onReset(emit)),
    command: (name, payload, options = {}) =>
      Effect.callback((resume, signal) => {
        client.command(name, payload, { timeoutMs: options.timeoutMs, signal }).then(
          (result) => resume(Effect.succeed(result)),
          (error: unknown) => resume(isCommandFailure(error) ? Effect.fail(error) : Effect.die(error))
        )
      }),
    close: Effect.sync(() => client.close())
  }
}

/**
 * A stream fed by a client callback. `emit` returns a promise only when the buffer is full, which holds the
 * channel's delivery (and its acks) until the consumer catches up.
 */
const streamFrom = <A, V extends VersionDef>(
  client: Client.Client<V>,
  register: (emit: (a: A) => PromiseLike<void> | undefined) => () => void,
  bufferSize = 1024
): Stream.Stream<A, TerminalError> =>
  Stream.callback<A, TerminalError>(
    (queue) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const end = () => {
            const error = client.error
            if (error === undefined) Queue.endUnsafe(queue)
            else Queue.failCauseUnsafe(queue, Cause.fail(error))
          }
          if (client.state === "closed") {
            end()
            return () => {}
          }
          const emit = (a: A): PromiseLike<void> | undefined => {
            if (Queue.offerUnsafe(queue, a)) return undefined
            return Effect.runPromise(Queue.offer(queue, a)).then(() => undefined)
          }
          const unregister = register(emit)
          const offState = client.onState((state) => {
            if (state === "closed") end()
          })
          return () => {
            unregister()
            offState()
          }
        }),
        (cleanup) => Effect.sync(cleanup)
      ),
    { bufferSize, strategy: "suspend" }
  )

const isTerminal = (error: unknown): error is TerminalError =>
  typeof error === "object" &&
  error !== null &&
  ["ProtocolMismatch", "Unauthorized", "ReconnectExhausted", "Disconnected"].includes(
    (error as { _tag?: string })._tag ?? ""
  )

const isCommandFailure = (error: unknown): error is CommandFailure<never> =>
  error instanceof CommandFailed ||
  error instanceof CommandRejected ||
  error instanceof CommandTimeout ||
  error instanceof Disconnected ||
  error instanceof ProtocolViolation
