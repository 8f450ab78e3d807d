/**
 * `Forward`: protocol commands answered by an application's HTTP endpoint (CommandForwarding.ts), and what such an
 * endpoint uses to check that a request came from the gateway (Signature.ts: `verify`, `ReplayCache`).
 */
export {
  type ForwardedCommand,
  type ForwardedHandlers,
  ForwardingFailed,
  type ForwardOptions,
  type ForwardTargets,
  handlers,
  to
} from "./CommandForwarding.ts"
export {
  DEFAULT_TOLERANCE_MS,
  headers,
  ReplayCache,
  SIGNATURE_HEADER,
  type SignedRequest,
  sign,
  TIMESTAMP_HEADER,
  type VerifyOptions,
  type VerifyResult,
  verify
} from "./Signature.ts"
