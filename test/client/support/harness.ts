/**
 * Per-test setup for client tests: a fake server and Node clients with fast reconnects, all closed after
 * each test.
 */
import { afterEach } from "vitest"
import * as Client from "../../../src/client/node.ts"
import type { Codec } from "../../../src/protocol/Negotiation.ts"
import { type FakeServer, type FakeServerOptions, start } from "./fakeServer.ts"
import { demo } from "./testProtocol.ts"

export type DemoClient = ReturnType<typeof Client.make<typeof demo, 2>>
type Options = Omit<Client.ClientOptions<2>, "url" | "version">

/** The wire codecs client suites run with. */
export const codecs: ReadonlyArray<Codec> = ["json", "msgpack"]

/** `codec`: the wire codec every client of this harness asks for (unless a test's options say otherwise). */
export const harness = (codec: Codec = "json") => {
  const cleanups: Array<() => unknown> = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
  return {
    server: async (options: Partial<FakeServerOptions> = {}): Promise<FakeServer> => {
      const server = await start({ protocol: "demo", versions: [1, 2], ...options })
      cleanups.push(server.close)
      return server
    },
    client: (server: FakeServer, options: Options = {}): DemoClient => {
      const client = Client.make(demo, {
        url: server.url,
        version: 2,
        backoff: { initialDelayMs: 20, maxDelayMs: 100 },
        codec,
        ...options
      })
      cleanups.push(() => client.close())
      return client
    },
    /** Registers any other cleanup. */
    defer: (cleanup: () => unknown) => {
      cleanups.push(cleanup)
    }
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export const deferred = <A = void>() => {
  let resolve!: (a: A) => void
  const promise = new Promise<A>((r) => {
    resolve = r
  })
  return { promise, resolve }
}
