/**
 * The server for programs that do not use Effect: `startServer(options)` builds the server Layer with its
 * transport in a runtime of its own and answers with Promises — `publish`, `ready`, `close` — so an Express or
 * plain Node program needs neither `ManagedRuntime` nor its own copy of `effect`. Handlers are still Effects (the
 * protocol's typing lives there) but may need no services.
 */
import { Cause, Exit, Layer, ManagedRuntime } from "effect"
import type { Position } from "../protocol/Position.ts"
import type { AnyProtocol, EventData, EventName, LatestOf } from "../protocol/Protocol.ts"
import * as Memory from "../transports/Memory.ts"
import type { AppendOptions, Transport } from "../transports/Transport.ts"
import type { Handlers } from "./Handlers.ts"
import { layer, type ServerOptions, TidingsServer } from "./Server.ts"

export interface StartOptions<P extends AnyProtocol> extends ServerOptions<P, never> {
  readonly handlers: Handlers<P, never>
  /** Where channels live (default: in memory, this process only); e.g. `Transports.Redis.layer({ url })`. */
  readonly transport?: Layer.Layer<Transport, unknown>
}

export interface RunningServer<P extends AnyProtocol> {
  readonly port: number
  readonly url: string
  /** Appends a typed event of the protocol's newest version to a channel; resolves with its position. */
  readonly publish: <K extends EventName<LatestOf<P>>>(
    channel: string,
    event: K,
    data: EventData<LatestOf<P>, K>,
    options?: AppendOptions
  ) => Promise<Position>
  /** Whether the server accepts connections and its transport is reachable. */
  readonly ready: () => Promise<boolean>
  /** Shuts down gracefully (clients are told to go away, buffers flushed) and releases the transport. */
  readonly close: () => Promise<void>
}

/** Starts a server; rejects with the reason when it cannot (a port in use, an unreachable broker). */
export const startServer = async <P extends AnyProtocol>(options: StartOptions<P>): Promise<RunningServer<P>> => {
  const { transport, ...serverOptions } = options
  const runtime = ManagedRuntime.make(
    layer(serverOptions).pipe(Layer.provide(transport ?? Memory.layer())) as Layer.Layer<TidingsServer, unknown>
  )
  const exit = await runtime.runPromiseExit(TidingsServer)
  if (Exit.isFailure(exit)) {
    await runtime.dispose()
    throw new Error(`tidings could not start: ${Cause.pretty(exit.cause)}`)
  }
  const server = exit.value
  return {
    port: server.port,
    url: server.url,
    publish: (channel, event, data, publishOptions) => server.publishPromise(channel, event, data, publishOptions),
    ready: () => runtime.runPromise(server.ready),
    close: () => runtime.dispose()
  }
}
