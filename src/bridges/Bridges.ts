/**
 * The bridges of a process, as a service: started from a checked configuration (BridgeConfig.ts) on the process's
 * transport and protocol, in a gateway (`tidings serve --bridges <file>`) or on their own (`tidings bridge`), with
 * their counters and connection states for `/metrics` and `/readyz`. A bridge's broker client is loaded only when
 * a bridge of its kind is configured.
 */
import { Context, Effect, Layer } from "effect"
import type { Registry } from "prom-client"
import type { AnyProtocol } from "../protocol/Protocol.ts"
import { ProtocolCodec } from "../protocol/ProtocolCodec.ts"
import * as Publisher from "../transports/Publisher.ts"
import { Transport } from "../transports/Transport.ts"
import type { BridgesFile } from "./BridgeConfig.ts"
import { type BridgeStats, register } from "./BridgeStats.ts"

export interface BridgesShape {
  readonly stats: ReadonlyArray<BridgeStats>
  /** Ready when every bridge is connected to its broker; otherwise the first one that is not, and why. */
  readonly readiness: () => { readonly ready: boolean; readonly reason?: string }
  readonly registerMetrics: (registry: Registry) => void
}

export class Bridges extends Context.Service<Bridges, BridgesShape>()("tidings/bridges/Bridges") {}

export const layer = (protocol: AnyProtocol, config: BridgesFile): Layer.Layer<Bridges, never, Transport> =>
  Layer.effect(
    Bridges,
    Effect.gen(function* () {
      const transport = yield* Transport
      const codec = new ProtocolCodec(protocol)
      const publisher = Publisher.make(transport, codec)
      const context = yield* Effect.context<never>()
      const env = { codec, publisher, runPromise: Effect.runPromiseWith(context) }
      const stats: Array<BridgeStats> = []
      for (const spec of config.bridges) {
        switch (spec.kind) {
          case "redis-pubsub": {
            const RedisPubSub = yield* Effect.promise(() => import("./RedisPubSubBridge.ts"))
            stats.push(yield* RedisPubSub.make(spec, env))
            break
          }
          case "amqp": {
            const Amqp = yield* Effect.promise(() => import("./AmqpBridge.ts"))
            stats.push(yield* Amqp.make(spec, env))
            break
          }
        }
        yield* Effect.logInfo(`tidings bridge ${spec.name} (${spec.kind}) started`)
      }
      return Bridges.of({
        stats,
        readiness: () => {
          const down = stats.find((s) => !s.connected)
          return down === undefined
            ? { ready: true }
            : { ready: false, reason: `bridge ${down.name}: ${down.reason ?? "not connected"}` }
        },
        registerMetrics: (registry) => register(registry, stats)
      })
    })
  )
