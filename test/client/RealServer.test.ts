/**
 * The typed client against the real server (not the fake): typed events and commands, typed errors, fromStart
 * replay, resume after the socket is destroyed mid-stream with nothing lost or repeated, v1 and v2 clients on
 * one channel, token refresh through the getter on `expiring_soon` — once per wire codec.
 */

import { connect as connectTcp, type NetConnectOpts, type Socket } from "node:net"
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { CommandFailed } from "../../src/client/errors.ts"
import * as Client from "../../src/client/node.ts"
import { TidingsServer } from "../../src/server/Server.ts"
import { ChatProtocol } from "../server/support/chatProtocol.ts"
import { sign, testServerLayer } from "../server/support/testServer.ts"
import { codecs } from "./support/harness.ts"

const unique = (prefix: string) => `${prefix}:${Math.random().toString(36).slice(2, 10)}`
const until = async (check: () => boolean, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time")
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** A v2 client of `alice`, who may read `room:*`, on `url` with `codec` and any further options. */
const aliceClient = (
  url: string,
  codec: Client.ClientOptions<2>["codec"],
  more: Partial<Client.ClientOptions<2>> = {}
) =>
  Client.make(ChatProtocol, {
    url,
    codec,
    version: 2,
    token: () => sign({ sub: "alice", channels: ["room:*"] }),
    ...more
  })

for (const codec of codecs) {
  layer(testServerLayer({ timing: { tokenExpiryWarningMs: 1500 } }), { excludeTestServices: true })(
    `client ↔ server (${codec})`,
    (it) => {
      it.effect("typed events, typed command results and typed command errors", () =>
        Effect.gen(function* () {
          const server = yield* TidingsServer
          const channel = unique("room")
          const client = aliceClient(server.url, codec)
          const said: Array<string> = []
          client.on("said", (data) => {
            said.push(data.body)
          })
          yield* Effect.promise(() => client.subscribe(channel).ready())
          const result = yield* Effect.promise(() => client.command("send", { channel, body: "hello", loud: false }))
          expect(result.offset).toBe(1)
          yield* Effect.promise(() => until(() => said.length === 1))
          expect(said).toEqual(["hello"])
          const failure = yield* Effect.promise(() =>
            client.command("fail", {}).then(
              () => undefined,
              (e: unknown) => e
            )
          )
          expect(failure).toBeInstanceOf(CommandFailed)
          expect((failure as CommandFailed<{ _tag: string }>).error).toMatchObject({ _tag: "NotAllowed" })
          client.close()
        })
      )

      it.effect("resumes after its socket is destroyed mid-stream: every event exactly once, in order", () =>
        Effect.gen(function* () {
          const server = yield* TidingsServer
          const channel = unique("room")
          const client = aliceClient(server.url, codec, {
            backoff: { initialDelayMs: 20, maxDelayMs: 100 },
            socket: Client.wsSocket({
              createConnection: (options) => {
                const socket = connectTcp(options as NetConnectOpts)
                openSockets.add(socket)
                return socket
              }
            })
          })
          const seen: Array<number> = []
          const states: Array<string> = []
          client.onState((state) => void states.push(state))
          client.on("tick", (data) => {
            seen.push(data.n)
          })
          yield* Effect.promise(() => client.subscribe(channel).ready())
          for (let n = 1; n <= 1000; n++) {
            yield* server.publishUnknown(channel, "tick", { n })
            // cut the TCP connection without a close handshake, as a dropped network would
            if (n === 300) for (const socket of openSockets) socket.destroy()
          }
          yield* Effect.promise(() => until(() => seen.length >= 1000))
          yield* Effect.sleep("100 millis")
          expect(seen).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1))
          expect(states).toContain("reconnecting")
          client.close()
        })
      )

      it.effect("v1 and v2 typed clients follow one channel, each in its own version; fromStart replays history", () =>
        Effect.gen(function* () {
          const server = yield* TidingsServer
          const channel = unique("room")
          yield* server.publishUnknown(channel, "said", { from: "x", body: "before" })
          const token = () => sign({ sub: "bob", channels: ["room:*"] })
          const v1 = Client.make(ChatProtocol, { url: server.url, version: 1, token, codec })
          const v2 = Client.make(ChatProtocol, { url: server.url, version: 2, token, codec })
          const got1: Array<string> = []
          const got2: Array<string> = []
          v1.on("said", (d) => void got1.push(d.text))
          v2.on("said", (d) => void got2.push(d.body))
          v2.on("shout", (d) => void got2.push(d.body.toUpperCase()))
          yield* Effect.promise(() =>
            Promise.all([
              v1.subscribe(channel, { fromStart: true }).ready(),
              v2.subscribe(channel, { fromStart: true }).ready()
            ])
          )
          yield* Effect.promise(() => v1.command("send", { channel, text: "from v1" }))
          yield* Effect.promise(() => v2.command("send", { channel, body: "loud", loud: true }))
          yield* Effect.promise(() => v2.command("send", { channel, body: "from v2", loud: false }))
          yield* Effect.promise(() => until(() => got1.length === 3 && got2.length === 4))
          expect(got1).toEqual(["before", "from v1", "from v2"])
          expect(got2).toEqual(["before", "from v1", "LOUD", "from v2"])
          v1.close()
          v2.close()
        })
      )

      it.effect("refreshes its token through the getter when the server warns that it expires", () =>
        Effect.gen(function* () {
          const server = yield* TidingsServer
          let issued = 0
          const client = Client.make(ChatProtocol, {
            url: server.url,
            codec,
            version: 2,
            token: () => {
              issued++
              return sign({ sub: "carol" }, { expiresInSeconds: issued === 1 ? 2 : 120 })
            }
          })
          yield* Effect.promise(() => client.ready())
          yield* Effect.sleep("3 seconds")
          expect(issued).toBe(2)
          expect(client.state).toBe("open")
          client.close()
        })
      )
    }
  )
}

/** The client's raw TCP sockets, so a test can cut one like a dropped network. */
const openSockets = new Set<Socket>()
