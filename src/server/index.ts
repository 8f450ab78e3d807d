/**
 * `tidings/server`: the embeddable server Layer and its service, `startServer` for programs without Effect, typed
 * handlers, protocol commands bound to runs (RunCommands) or forwarded to HTTP endpoints (Forward), publishing,
 * presence, traces (Tracing), several processes behind one port (Processes), auth options and limits.
 */

export { InvalidEvent, type PublishError } from "../transports/Publisher.ts"
export type { AuthOptions, Identity } from "./auth/Auth.ts"
export { AuthFailed } from "./auth/Auth.ts"
export { type RunningServer, type StartOptions, startServer } from "./Embedded.ts"
export * as Forward from "./forward/index.ts"
export type { CommandContext, Handler, Handlers, Publish } from "./Handlers.ts"
export type { Limits, Timing } from "./Options.ts"
export { defaultLimits, defaultTiming } from "./Options.ts"
export type { PresenceMember, PresenceOptions, PresenceRule } from "./presence/index.ts"
export * as Processes from "./processes/index.ts"
export * as RunCommands from "./RunCommands.ts"
export { layer, make, publish, type ServerOptions, TidingsServer, type TidingsServerShape } from "./Server.ts"
export * as Tracing from "./Tracing.ts"
