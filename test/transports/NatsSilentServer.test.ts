/**
 * SilentServers (src/transports/nats/SilentServer.ts): which server a reconnect dials after the transport left a
 * silent one. The leaving itself, against a partitioned cluster, is test/cluster/NatsPartition.test.ts's.
 */
import type { Server } from "@nats-io/transport-node"
import { describe, expect, it } from "vitest"
import { SilentServers } from "../../src/transports/nats/SilentServer.ts"

const server = (listen: string): Server =>
  ({
    listen,
    hostname: listen.split(":")[0]!,
    port: 4222,
    src: listen,
    tlsName: "",
    reconnects: 0,
    lastConnect: 0,
    gossiped: true,
    didConnect: true
  }) as Server

describe("SilentServers", () => {
  const pool = [server("10.0.0.1:4222"), server("10.0.0.2:4222"), server("10.0.0.3:4222")]

  it("leaves the choice to nats.js while no server was left", () => {
    expect(new SilentServers(() => 0).pick(pool)).toBeNull()
  })

  it("dials the first server of the pool not left lately", () => {
    const silent = new SilentServers(() => 1000)
    silent.leaving("10.0.0.1:4222")
    expect(silent.pick(pool)?.listen).toBe("10.0.0.2:4222")
    silent.leaving("10.0.0.2:4222")
    expect(silent.pick(pool)?.listen).toBe("10.0.0.3:4222")
  })

  it("dials a server left more than avoidForMs ago again, and leaves the choice to nats.js when all were left", () => {
    let now = 0
    const silent = new SilentServers(() => now, 30_000)
    for (const s of pool) silent.leaving(s.listen)
    expect(silent.pick(pool)).toBeNull()
    now = 30_001
    expect(silent.pick(pool)?.listen).toBe("10.0.0.1:4222")
  })
})
