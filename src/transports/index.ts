/**
 * `tidings/transports`: the Transport contract, the in-memory transport, and choosing one from configuration.
 * The Redis and NATS transports are separate entry points (`tidings/transports/redis`, `tidings/transports/nats`)
 * so that their clients load only when used.
 */
export { layerConfig, TransportKind } from "./fromConfig.ts"
export * as Memory from "./Memory.ts"
export {
  type AppendOptions,
  defaultRetention,
  type Entry,
  type Listener,
  type Publication,
  type ReadResult,
  type Retention,
  Transport,
  TransportError,
  type TransportOptions,
  type TransportShape
} from "./Transport.ts"
