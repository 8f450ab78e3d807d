/**
 * Every limit and knob of a tidings server, as named options with documented defaults.
 * docs/security.md and docs/operations.md list them; Config.ts reads them from the environment.
 */

export interface Limits {
  /** Largest inbound frame accepted; bigger ones get `error {code: "frame_too_large"}`. Default 64 KiB. */
  readonly maxFrameBytes: number
  /**
   * Inbound messages over this close the socket (ws maxPayload, close 1009); between maxFrameBytes and this they
   * get `frame_too_large` and the connection stays. Default 256 KiB, or 4 × maxFrameBytes when that is larger.
   */
  readonly maxPayloadBytes: number
  /** Bound on a connection's unsent output (ours plus the socket's). Over it, a client is closed 4001. 1 MiB. */
  readonly maxOutboundBytes: number
  /** Subscriptions per connection. Default 128. */
  readonly maxSubscriptions: number
  /** Token bucket for commands: sustained rate per second. Default 20. */
  readonly commandsPerSecond: number
  /** Token bucket burst size. Default 40. */
  readonly commandBurst: number
  /** Refusals in a row after which a flooding connection is closed 4003. Default 100. */
  readonly maxRateLimitRefusals: number
  /** Connections per server. Default 20,000. */
  readonly maxConnections: number
  /** Connections per user. Default 50. */
  readonly maxConnectionsPerUser: number
  /** Upgrade attempts per second per IP before HTTP 429. Default 50. */
  readonly connectionAttemptsPerSecondPerIp: number
  /** Most entries replayed on one subscribe; a longer gap is answered with `reset {reason: "trimmed"}`. 100,000. */
  readonly maxReplayEntries: number
}

export const defaultLimits: Limits = {
  maxFrameBytes: 64 * 1024,
  maxPayloadBytes: 256 * 1024,
  maxOutboundBytes: 1024 * 1024,
  maxSubscriptions: 128,
  commandsPerSecond: 20,
  commandBurst: 40,
  maxRateLimitRefusals: 100,
  maxConnections: 20_000,
  maxConnectionsPerUser: 50,
  connectionAttemptsPerSecondPerIp: 50,
  maxReplayEntries: 100_000
}

export interface Timing {
  /** Server ping interval; a peer silent for two intervals is dropped. Default 25 s. */
  readonly heartbeatMs: number
  /** Time a connection has to send `authenticate` when it was not authenticated at the upgrade. Default 5 s. */
  readonly authTimeoutMs: number
  /** How long before a token's expiry the client is warned (`session_update`). Default 60 s. */
  readonly tokenExpiryWarningMs: number
  /** On shutdown, how long outbound buffers may take to flush before sockets are closed. Default 5 s. */
  readonly shutdownGraceMs: number
  /** Cumulative acks are written to the cursor store at most this often per connection. Default 1 s. */
  readonly cursorFlushMs: number
}

export const defaultTiming: Timing = {
  heartbeatMs: 25_000,
  authTimeoutMs: 5_000,
  tokenExpiryWarningMs: 60_000,
  shutdownGraceMs: 5_000,
  cursorFlushMs: 1_000
}
