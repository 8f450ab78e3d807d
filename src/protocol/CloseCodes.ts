/**
 * WebSocket close codes tidings uses, and whether a client should reconnect after each. Stable wire
 * vocabulary, documented in docs/protocol.md.
 */

export const CloseCodes = {
  /** The client closed on purpose. Do not reconnect. */
  normal: 1000,
  /** The server is shutting down or restarting (after `goaway`). Reconnect, to another node if there is one. */
  goingAway: 1001,
  /** The outbound buffer exceeded its bound because the client did not read. Reconnect and resume. */
  slowConsumer: 4001,
  /** No pong within two heartbeat intervals. Reconnect and resume. */
  heartbeatTimeout: 4002,
  /** Sustained abuse of the command rate limit. Reconnect after a backoff. */
  rateLimited: 4003,
  /** The server is at its connection limit (server or per user). Reconnect after a backoff. */
  tooManyConnections: 4004,
  /** Authentication failed (bad or missing token). Reconnect only with a new token. */
  unauthorized: 4401,
  /** The token expired and was not refreshed in band. Refresh the token, then reconnect. */
  tokenExpired: 4403,
  /** No `authenticate` frame arrived in time. Reconnect. */
  authTimeout: 4408,
  /** An internal server error. Reconnect after a backoff. */
  internal: 4500
} as const

export type CloseCode = (typeof CloseCodes)[keyof typeof CloseCodes]

/** Whether a client should reconnect (and resume) after the server closed with `code`. */
export const isResumable = (code: number): boolean => code !== CloseCodes.normal && code !== CloseCodes.unauthorized
