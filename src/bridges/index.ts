/**
 * `tidings/bridges`: existing workers' brokers into channel logs (Redis pub/sub, RabbitMQ) configured by a checked
 * file (BridgeConfig), run as a service beside a server or on their own (Bridges), and protocol commands published
 * to a RabbitMQ exchange (AmqpCommands). Commands forwarded over HTTP are `Forward` in `tidings/server`.
 */
export * as AmqpCommands from "./AmqpCommands.ts"
export * as BridgeConfig from "./BridgeConfig.ts"
export { Bridges, type BridgesShape, layer } from "./Bridges.ts"
