/**
 * A tidings node for the cluster tests, run as its own process (`node --import tsx test/cluster/support/node.ts`):
 * Server.layer with the chat test protocol and its handlers, the transport chosen by configuration
 * (Transports.layerConfig: TIDINGS_TRANSPORT, REDIS_URL / REDIS_KEY_PREFIX, NATS_URL / NATS_STREAM /
 * NATS_SUBJECT_PREFIX) and everything else from the same environment variables as `tidings serve` (ServeConfig:
 * TIDINGS_PORT, TIDINGS_JWT_SECRET, TIDINGS_API_KEY, limits, timing); PRESENCE_CHANNELS turns presence on.
 *
 * Once it listens it prints one JSON line `{"listening": "<ws url>", "port": N}` on stdout, which
 * cluster.ts waits for. It leaves starting, killing and watching it to cluster.ts.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Context, Effect, Layer, Option } from "effect"
import { ServeConfig } from "../../../src/server/Config.ts"
import * as Server from "../../../src/server/Server.ts"
import * as Transports from "../../../src/transports/fromConfig.ts"
import { ChatProtocol } from "../../server/support/chatProtocol.ts"
import { chatHandlers, chatPresence } from "../../server/support/testServer.ts"

const main = Effect.gen(function* () {
  const config = yield* ServeConfig
  const secret = Option.getOrUndefined(config.jwtSecret)
  if (secret === undefined) return yield* Effect.die(new Error("test node: TIDINGS_JWT_SECRET is required"))
  const layer = Server.layer({
    protocol: ChatProtocol,
    handlers: chatHandlers,
    host: config.host,
    port: config.port,
    path: config.path,
    auth: { secret },
    ...(Option.isSome(config.apiKey) ? { apiKey: config.apiKey.value } : {}),
    limits: config.limits,
    timing: config.timing,
    // PRESENCE_CHANNELS: presence on that pattern (chatPresence), expiring PRESENCE_EXPIRY_MS after a node goes silent
    ...(process.env.PRESENCE_CHANNELS
      ? { presence: chatPresence(process.env.PRESENCE_CHANNELS, Number(process.env.PRESENCE_EXPIRY_MS ?? 15_000)) }
      : {})
  }).pipe(Layer.provide(Transports.layerConfig()))
  const context = yield* Layer.build(layer)
  const server = Context.get(context, Server.TidingsServer)
  process.stdout.write(`${JSON.stringify({ listening: server.url, port: server.port })}\n`)
  return yield* Effect.never
}).pipe(Effect.scoped)

NodeRuntime.runMain(main)
