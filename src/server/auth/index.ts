/**
 * Who a connection is: tokens (HS256 by fast-jwt, JWKS by jose) turned into identities, and the channel patterns
 * that say what an identity may read and publish. Depends on nothing else in the server.
 */
export { type Authenticator, AuthFailed, type AuthOptions, Identity, identityFromClaims, make } from "./Auth.ts"
export { broadcastChannel, compile, isPersonalChannel, type Matcher, never } from "./ChannelPattern.ts"
