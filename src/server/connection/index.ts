/**
 * One WebSocket connection from its upgrade to its close: the upgrade's checks and credentials, authentication,
 * subscriptions and their catch-up, acks and session cursors, commands and their rate limit, heartbeat. Uses
 * auth/, fanout/ and outbound/.
 */
export { Connection, type ConnectionEnv } from "./Connection.ts"
export { ConnectionSocket } from "./ConnectionSocket.ts"
export { AttemptLimiter, credentials, pathOf, peerAddress, plainOptions, refuse } from "./Upgrade.ts"
