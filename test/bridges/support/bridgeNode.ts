/**
 * The bridges of a configuration file on their own, as a process (`node --import tsx test/bridges/support/bridgeNode.ts`),
 * for the AMQP bridge tests and the bridges benchmark: the Redis transport (REDIS_URL, REDIS_KEY_PREFIX) and
 * Bridges.layer with the progress test protocol and the bridges of BRIDGES_FILE (JSON, checked as `tidings bridge`
 * checks it). It stays up until killed.
 *
 * Every STATS_EVERY_MS (default 200) it prints one JSON line on stdout with each bridge's counters and connection
 * state: `{"stats": [{"name", "connected", "reason", "appended", "duplicate", "dead_lettered", "append_failed"}]}`.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Context, Effect, Layer } from "effect"
import * as BridgeConfig from "../../../src/bridges/BridgeConfig.ts"
import * as Bridges from "../../../src/bridges/Bridges.ts"
import * as Redis from "../../../src/transports/Redis.ts"
import { ProgressProtocol } from "./progressProtocol.ts"

const required = (name: string): string => {
  const value = process.env[name]
  if (value === undefined || value === "") throw new Error(`bridge node: ${name} is required`)
  return value
}

const main = Effect.gen(function* () {
  const config = yield* BridgeConfig.load(required("BRIDGES_FILE"))
  const layer = Bridges.layer(ProgressProtocol, config).pipe(
    Layer.provide(Redis.layer({ url: required("REDIS_URL"), keyPrefix: process.env.REDIS_KEY_PREFIX ?? "tidings:" }))
  )
  const context = yield* Layer.build(layer)
  const bridges = Context.get(context, Bridges.Bridges)
  const report = () =>
    process.stdout.write(
      `${JSON.stringify({
        stats: bridges.stats.map((s) => ({
          name: s.name,
          connected: s.connected,
          reason: s.reason ?? null,
          appended: s.get("appended"),
          duplicate: s.get("duplicate"),
          dead_lettered: s.get("dead_lettered"),
          append_failed: s.get("append_failed")
        }))
      })}\n`
    )
  const timer = setInterval(report, Number(process.env.STATS_EVERY_MS ?? 200))
  yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(timer)))
  report()
  return yield* Effect.never
}).pipe(Effect.scoped)

NodeRuntime.runMain(main)
