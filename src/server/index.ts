/**
 * `tidings/server`: the embeddable server Layer and its service, typed handlers, publishing, auth options,
 * limits, and the simulated agent used by `tidings serve`.
 */
export type { AuthOptions, Identity } from "./Auth.ts"
export { AuthFailed } from "./Auth.ts"
export * as SimulatedAgent from "./agent/SimulatedAgent.ts"
export type { CommandContext, Handler, Handlers, Publish } from "./Handlers.ts"
export { type Jobs, make as makeJobs } from "./Jobs.ts"
export type { Limits, Timing } from "./Options.ts"
export { defaultLimits, defaultTiming } from "./Options.ts"
export { InvalidEvent, type PublishError } from "./Publisher.ts"
export { layer, make, publish, type ServerOptions, TidingsServer, type TidingsServerShape } from "./Server.ts"
