/**
 * `tidings`: the server side in one import — protocol DSL, server Layer, runs, transports, and the simulated
 * agent `tidings serve` hosts. The client lives at `tidings/client` (browser and Node), the built-in agent
 * protocol at `tidings/agent`.
 */
export * as SimulatedAgent from "./agent/SimulatedAgent.ts"
export * as Protocol from "./protocol/index.ts"
export * as Runs from "./runs/index.ts"
export * from "./server/index.ts"
export * as Transports from "./transports/index.ts"
