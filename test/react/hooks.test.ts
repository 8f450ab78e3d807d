// @vitest-environment jsdom
/**
 * `tidings/react` (src/react/index.ts) rendered by React 19 in StrictMode (double mounting) in jsdom, against a
 * real server on the memory transport: a component shows a channel's events folded into a list and the
 * connection's state; the server is stopped and started again on the same port, and the component shows
 * `reconnecting`, then `open`, the reset (the memory transport's history died with the server), and the events
 * published after. Each event is shown once although StrictMode mounts the component twice.
 */
import { Effect, Exit, Layer, Scope } from "effect"
import { createSigner } from "fast-jwt"
import { act, createElement, StrictMode } from "react"
import { createRoot } from "react-dom/client"
import { afterAll, describe, expect, it } from "vitest"
import type * as Client from "../../src/client/index.ts"
import * as ClientNode from "../../src/client/node.ts"
import { type ChannelInput, useChannel, useConnectionState } from "../../src/react/index.ts"
import * as Server from "../../src/server/Server.ts"
import * as Memory from "../../src/transports/Memory.ts"
import { ChatProtocol } from "../server/support/chatProtocol.ts"
import { chatHandlers, SECRET } from "../server/support/testServer.ts"

;(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true

type V2 = typeof ChatProtocol.latest

const startServer = async (port: number) => {
  const scope = Effect.runSync(Scope.make())
  const layer = Server.layer({ protocol: ChatProtocol, handlers: chatHandlers, port, auth: { secret: SECRET } }).pipe(
    Layer.provide(Memory.layer())
  )
  const context = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  const server = (await Effect.runPromise(Effect.provide(Server.TidingsServer, context))) as Server.TidingsServerShape
  return { server, stop: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

/** The room's lines: each said body, and a marker where history was lost. */
const lines = (state: ReadonlyArray<string>, input: ChannelInput<V2>): ReadonlyArray<string> =>
  input.kind === "reset" ? [...state, "(reset)"] : input.event === "said" ? [...state, input.data.body] : state
const none: ReadonlyArray<string> = []

/** The connection's state and the room's lines. */
function Room({ client, channel }: { readonly client: Client.Client<V2>; readonly channel: string }) {
  const state = useConnectionState(client)
  const said = useChannel(client, channel, lines, none)
  return createElement(
    "div",
    null,
    createElement("span", { id: "state" }, state),
    createElement(
      "ul",
      null,
      said.map((line, i) => createElement("li", { key: `${i}-${line}` }, line))
    )
  )
}

describe("tidings/react", () => {
  let running: Awaited<ReturnType<typeof startServer>> | undefined
  afterAll(async () => {
    await running?.stop()
  })

  it("shows a channel's events and the connection state through a server restart, in StrictMode", async () => {
    running = await startServer(0)
    const port = running.server.port
    // signed with node:crypto (fast-jwt): jose's WebCrypto key checks fail across jsdom's realm
    const token = createSigner({ key: SECRET, expiresIn: 60_000 })({ sub: "ann", channels: ["room:*"] })
    const client = ClientNode.make(ChatProtocol, {
      url: running.server.url,
      version: 2,
      token,
      backoff: { initialDelayMs: 50, maxDelayMs: 200 }
    })
    const channel = "room:react"

    const container = document.createElement("div")
    document.body.append(container)
    const root = createRoot(container)
    await act(async () => {
      root.render(createElement(StrictMode, null, createElement(Room, { client, channel })))
    })
    const state = () => container.querySelector("#state")?.textContent
    const items = () => Array.from(container.querySelectorAll("li"), (li) => li.textContent)
    const settle = async (check: () => boolean) => {
      let held = false
      for (let i = 0; i < 300 && !held; i++) {
        await act(async () => {
          await new Promise((resolve) => setTimeout(resolve, 30))
        })
        held = check()
      }
      return held
    }

    expect(await settle(() => state() === "open")).toBe(true)
    for (const body of ["one", "two", "three"]) {
      await Effect.runPromise(running.server.publishUnknown(channel, "said", { from: "x", body }))
    }
    expect(await settle(() => items().length === 3)).toBe(true)
    expect(items()).toEqual(["one", "two", "three"])

    // the server goes away and comes back on the same port, empty (memory transport)
    await running.stop()
    running = undefined
    expect(await settle(() => state() === "reconnecting")).toBe(true)
    running = await startServer(port)
    expect(await settle(() => state() === "open")).toBe(true)
    await Effect.runPromise(running.server.publishUnknown(channel, "said", { from: "x", body: "four" }))
    expect(await settle(() => items().includes("four"))).toBe(true)
    expect(items()).toEqual(["one", "two", "three", "(reset)", "four"])

    await act(async () => root.unmount())
    client.close()
  }, 30_000)
})
