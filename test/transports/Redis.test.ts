/**
 * The Redis transport against the shared conformance suite, on a private redis-server with a key prefix unique
 * to this run. Redis-only behaviour (gap filling, flushes, outages) is in RedisSpecific.test.ts.
 */
import { randomUUID } from "node:crypto"
import { describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Redis from "../../src/transports/Redis.ts"
import { channelKeys } from "../../src/transports/redis/codec.ts"
import { type RedisServer, redisServerScoped } from "../support/redisServer.ts"
import { requireBinary } from "../support/requireBinary.ts"
import { suite } from "./TransportSuite.ts"

const binary = requireBinary("redis-server", "Redis transport conformance")

if (binary === undefined) {
  describe.skip("Transport conformance: redis (redis-server not installed)", () => {
    it("skipped", () => {})
  })
} else {
  const keyPrefix = `tidings-test-${randomUUID().slice(0, 8)}:`
  let server: RedisServer | undefined

  suite(
    "redis",
    (options) =>
      Layer.unwrap(
        Effect.map(redisServerScoped(binary), (started) => {
          server = started
          return Redis.layer({ ...options, url: started.url, keyPrefix })
        })
      ),
    {
      // Losing a channel's log in Redis = its meta and stream keys disappearing (eviction, FLUSHALL, failover).
      resetChannel: (channel) =>
        Effect.promise(() => {
          const keys = channelKeys(keyPrefix, channel)
          return server!.command("DEL", keys.meta, keys.stream)
        })
    }
  )
}
