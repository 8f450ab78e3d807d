/**
 * `tidings`: the server side in one import — protocol DSL, server Layer, transports. The client lives at
 * `tidings/client` (browser and Node), the built-in agent protocol at `tidings/agent`.
 */
export * as Protocol from "./protocol/index.ts"
export * from "./server/index.ts"
export * as Transports from "./transports/index.ts"
