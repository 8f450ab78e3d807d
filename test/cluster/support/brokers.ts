/**
 * The broker under a cluster test, Redis or NATS, behind one small interface: start a private server (the test
 * support helpers redisServer.ts / natsServer.ts, free port on 127.0.0.1), hand out the environment that points
 * a tidings node at it with names unique to one test (REDIS_KEY_PREFIX, or NATS_STREAM + NATS_SUBJECT_PREFIX),
 * and stop / crash / restart it for fault tests. Whether the binary is present is requireBinary's call.
 */
import { randomUUID } from "node:crypto"
import { startNatsServer } from "../../support/natsServer.ts"
import { startRedisServer } from "../../support/redisServer.ts"
import { requireBinary } from "../../support/requireBinary.ts"

export type BrokerKind = "redis" | "nats"
export const brokerKinds: ReadonlyArray<BrokerKind> = ["redis", "nats"]

export interface Broker {
  readonly kind: BrokerKind
  readonly url: string
  /** Environment for a tidings node using this broker, with key prefix / stream names unique to `tag`. */
  readonly env: (tag: string) => Record<string, string>
  /** Stops the server (Redis saves a snapshot first; NATS keeps its store directory). */
  readonly stop: () => Promise<void>
  /** Kills the server with SIGKILL, as a crash: Redis (no persistence configured) loses its data; NATS keeps its files. */
  readonly crash: () => Promise<void>
  /** Starts it again on the same port with the data it kept. */
  readonly start: () => Promise<void>
  /** Stops it and removes its data. */
  readonly close: () => Promise<void>
}

/** The binary for `kind`, or undefined (a visible skip locally; under CI=true this throws). */
export const brokerBinary = (kind: BrokerKind, suite: string): string | undefined =>
  requireBinary(kind === "redis" ? "redis-server" : "nats-server", suite)

const unique = () => randomUUID().replaceAll("-", "").slice(0, 10)

export const startBroker = async (kind: BrokerKind, binary: string): Promise<Broker> => {
  if (kind === "redis") {
    const server = await startRedisServer(binary)
    return {
      kind,
      url: server.url,
      env: (tag) => ({ TIDINGS_TRANSPORT: "redis", REDIS_URL: server.url, REDIS_KEY_PREFIX: `t-${tag}-${unique()}:` }),
      stop: () => server.stop({ persist: true }),
      crash: () => server.kill(),
      start: () => server.restart(),
      close: () => server.dispose()
    }
  }
  const server = await startNatsServer({ binary })
  return {
    kind,
    url: server.url,
    env: (tag) => {
      const id = `${tag.replace(/[^A-Za-z0-9_-]/g, "_")}_${unique()}`
      return {
        TIDINGS_TRANSPORT: "nats",
        NATS_URL: server.url,
        NATS_STREAM: `T_${id}`,
        NATS_SUBJECT_PREFIX: `t.${id}`
      }
    },
    stop: () => server.stop(),
    crash: () => server.kill(),
    start: () => server.restart(),
    close: () => server.close()
  }
}
