/**
 * Puts FastParser.ts in place of nats.js's parser on one connection, for as long as it lives: the connection's
 * protocol handler reads `parser` before every chunk and assigns a new nats.js parser on every reconnect, so
 * `parser` becomes an accessor that hands out a FastParser and turns each assigned parser into one.
 *
 * This reaches into nats.js (`NatsConnectionImpl.protocol`, `ProtocolHandler.parser`, exported by
 * @nats-io/nats-core/internal but not part of its documented API), so every assumption is checked first; when
 * one does not hold, the connection keeps nats.js's parser, which is correct, only slower.
 * test/transports/NatsParser.test.ts compares both parsers' events and fails if the swap stops taking.
 */
import { Parser, ProtocolHandler, State } from "@nats-io/nats-core/internal"
import type { NatsConnection } from "@nats-io/transport-node"
import { FastParser } from "./FastParser.ts"

/** Installs FastParser on `nc`; false (nothing changed) where nats.js is not laid out as this expects. */
export const installFastParser = (nc: NatsConnection): boolean => {
  const protocol: unknown = (nc as { readonly protocol?: unknown }).protocol
  if (!(protocol instanceof ProtocolHandler)) return false
  const current: unknown = protocol.parser
  if (current instanceof FastParser) return true
  // Swapped only between operations: nats.js's parser holds nothing half-read.
  if (!(current instanceof Parser) || current.state !== State.OP_START || current.argBuf || current.msgBuf) return false
  const descriptor = Object.getOwnPropertyDescriptor(protocol, "parser")
  if (descriptor === undefined || !descriptor.configurable || !("value" in descriptor)) return false
  let parser = new FastParser(protocol)
  Object.defineProperty(protocol, "parser", {
    configurable: true,
    enumerable: descriptor.enumerable ?? true,
    get: () => parser,
    // nats.js assigns `new Parser(this)`: the dispatcher is always the protocol handler itself
    set: () => {
      parser = new FastParser(protocol)
    }
  })
  return true
}
