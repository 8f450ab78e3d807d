/**
 * Frames on their way out: each connection's queue and its writes to the socket (batches, shared frames encoded
 * once for every recipient, the slow-consumer bound) and prebuilt WebSocket frames. Depends on nothing else in
 * the server.
 */
export { Outbound, type OutboundOwner, type OutFrame, SharedFrame } from "./Outbound.ts"
