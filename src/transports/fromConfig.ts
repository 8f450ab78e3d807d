/**
 * Chooses the transport from configuration: `TIDINGS_TRANSPORT=memory|redis|nats` (default memory), with
 * `REDIS_URL` / `NATS_URL` for the brokers. Redis and NATS modules are loaded only when chosen, so a memory
 * deployment never loads a broker client.
 */
import { Config, Effect, Layer } from "effect"
import * as Memory from "./Memory.ts"
import type { Transport, TransportOptions } from "./Transport.ts"

export const TransportKind = Config.Literals(["memory", "redis", "nats"], "TIDINGS_TRANSPORT").pipe(
  Config.withDefault("memory" as const)
)
export type TransportKind = "memory" | "redis" | "nats"

export const layerConfig = (options: TransportOptions = {}): Layer.Layer<Transport, unknown> =>
  Layer.unwrap(
    Effect.gen(function* () {
      const kind = yield* TransportKind
      yield* Effect.logInfo(`transport: ${kind}`)
      switch (kind) {
        case "memory":
          return Memory.layer(options)
        case "redis":
          return (yield* Effect.promise(() => import("./Redis.ts"))).layerConfig(options)
        case "nats":
          return (yield* Effect.promise(() => import("./Nats.ts"))).layerConfig(options)
      }
    })
  )
