/**
 * The typed client's public surface, Promise and callback style: `make`, and its types (types.ts). A client is one
 * logical connection to a tidings server that survives reconnects: it negotiates the protocol version,
 * authenticates, (re)subscribes its channels from the last positions it saw, drops duplicates (offsets may
 * jump over events its version does not see), reports resets, delivers typed events in order, acks them in batches once handlers returned,
 * correlates command replies, answers pings and watches for a silent server.
 *
 * Browser-safe. The behaviour lives in Connection.ts (lifecycle) and Channels.ts (positions, delivery, acks);
 * the wire frames, codec and close codes in src/protocol; the Effect API in ClientEffect.ts.
 */
import type { AnyProtocol, VersionNumber, VersionOf } from "../protocol/Protocol.ts"
import { Connection } from "./Connection.ts"
import type { Client, ClientOptions } from "./types.ts"

export type * from "./types.ts"

/**
 * Creates a client and starts connecting. `version` picks one of the protocol's versions; events, commands
 * and their payloads are typed by that version.
 */
export const make = <P extends AnyProtocol, const N extends VersionNumber<P>>(
  protocol: P,
  options: ClientOptions<N>
): Client<VersionOf<P, N>> => new Connection<VersionOf<P, N>>(protocol, options)
