/**
 * Puts FastParser.ts in place of nats.js's parser on one connection, for as long as it lives: the connection's
 * protocol handler reads `parser` before every chunk and assigns a new nats.js parser on every reconnect, so
 * `parser` becomes an accessor that hands out a FastParser and turns each assigned parser into one.
 *
 * This reaches into nats.js (`NatsConnectionImpl.protocol`, `ProtocolHandler.parser`, exported by
 * @nats-io/nats-core/internal but not part of its documented API), so every assumption is checked first; when
 * one does not hold, the connection keeps nats.js's parser, which is correct, only slower. It is installed only on
 * the nats.js release it was checked against (`CHECKED_WITH`): any other keeps nats.js's parser, and
 * test/transports/NatsParser.test.ts, which compares both parsers' events, fails loudly until the check is redone.
 * Why keep it at all: NATS replay and fan-out with and without it, docs/performance.md.
 */
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { Parser, ProtocolHandler, State } from "@nats-io/nats-core/internal"
import type { NatsConnection } from "@nats-io/transport-node"
import { FastParser } from "./FastParser.ts"

/** The @nats-io/nats-core release whose parser and protocol handler FastParser was checked against. */
export const CHECKED_WITH = "3.4.0"

/** The installed @nats-io/nats-core release (its package.json sits above its main module). */
export const installedNatsCore: string | undefined = (() => {
  try {
    const main = createRequire(import.meta.url).resolve("@nats-io/nats-core")
    const pkg = JSON.parse(readFileSync(join(dirname(main), "..", "package.json"), "utf8")) as { version?: unknown }
    return typeof pkg.version === "string" ? pkg.version : undefined
  } catch {
    return undefined
  }
})()

/** Installs FastParser on `nc`; false (nothing changed) where nats.js is not laid out as this expects. */
export const installFastParser = (nc: NatsConnection): boolean => {
  if (installedNatsCore !== CHECKED_WITH) return false
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
