/**
 * The browser-safe client entry (`tidings/client`): the Promise API (`make`), the Effect API (`makeEffect`),
 * their types and errors. It uses `globalThis.WebSocket` and imports nothing from Node; node.ts is the same
 * surface over `ws`.
 *
 * ```ts
 * import * as Client from "tidings/client"
 * const client = Client.make(myProtocol, { url: "wss://example.com/ws", version: 2, token: () => getToken() })
 * client.subscribe("run:123")
 * client.on("step_update", (data, meta) => render(data, meta.offset))
 * client.onReset((reset) => reload(reset.channel))
 * const { runId } = await client.command("start", { query: "..." })
 * ```
 */
export type { AckOptions } from "./AckBatcher.ts"
export type { BackoffOptions } from "./Backoff.ts"
export {
  type Client,
  type ClientOptions,
  type ClientState,
  type CommandOptions,
  type EventHandler,
  type EventMeta,
  make,
  type PresenceMember,
  type ReceivedEvent,
  type ResetNotice,
  type SubscribedInfo,
  type SubscribeOptions,
  type Subscription,
  type TokenSource,
  type WelcomeInfo
} from "./Client.ts"
export { type ClientEffect, fromClient, make as makeEffect, type StreamOptions } from "./ClientEffect.ts"
export {
  type ClientIssue,
  CommandFailed,
  type CommandFailure,
  CommandRejected,
  CommandTimeout,
  Disconnected,
  HandlerFailed,
  ProtocolMismatch,
  ProtocolViolation,
  ReconnectExhausted,
  ServerError,
  type TerminalError,
  Unauthorized
} from "./errors.ts"
export {
  fromWebSocket,
  type Socket,
  type SocketFactory,
  type SocketHandlers,
  type WebSocketConstructor
} from "./Socket.ts"
