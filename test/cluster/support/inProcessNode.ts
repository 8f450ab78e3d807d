/**
 * A tidings node in the test's own process (the chat test protocol) on the transport the environment names
 * (TIDINGS_TRANSPORT, REDIS_URL / NATS_URL…, as broker.env gives it), with the transport's warnings silenced: the
 * tests that use it report what matters themselves.
 */
import { ConfigProvider, Context, Effect, Exit, Layer, Logger, Scope } from "effect"
import * as Server from "../../../src/server/Server.ts"
import * as Transports from "../../../src/transports/fromConfig.ts"
import { ChatProtocol } from "../../server/support/chatProtocol.ts"
import { chatHandlers, SECRET } from "../../server/support/testServer.ts"

export const inProcessNode = async (env: Record<string, string>, options: { readonly apiKey?: string } = {}) => {
  const layer = Server.layer({
    protocol: ChatProtocol,
    handlers: chatHandlers,
    port: 0,
    auth: { secret: SECRET },
    ...(options.apiKey !== undefined ? { apiKey: options.apiKey } : {})
  }).pipe(
    Layer.provide(Transports.layerConfig()),
    Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnvRecord(env))),
    Layer.provide(Logger.layer([]))
  )
  const scope = Effect.runSync(Scope.make())
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  return {
    server: Context.get(context, Server.TidingsServer),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}
