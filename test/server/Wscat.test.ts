/**
 * `wscat` (the npm package), as someone trying tidings by hand would run it: `wscat -c ws://…/ws -x '<subscribe>'`
 * with no subprotocol on a server that allows anonymous access. It is welcomed at once, subscribes, and prints the
 * event published meanwhile, one JSON frame per line.
 */
import { spawn } from "node:child_process"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { TidingsServer } from "../../src/server/Server.ts"
import { eventually } from "../support/until.ts"
import { testServerLayer } from "./support/testServer.ts"

const wscat = join(dirname(createRequire(import.meta.url).resolve("wscat/package.json")), "bin", "wscat")

layer(testServerLayer({ anonymous: true }), { excludeTestServices: true })("wscat", (it) => {
  it.effect("connects, subscribes and prints the events it receives", () =>
    Effect.gen(function* () {
      const server = yield* TidingsServer
      const channel = `public:${Math.random().toString(36).slice(2, 10)}`
      const subscribe = JSON.stringify({ type: "subscribe", channel })
      const child = spawn(process.execPath, [wscat, "--no-color", "-c", server.url, "-x", subscribe, "-w", "3"], {
        // stdin stays open: wscat quits when its input closes
        stdio: ["pipe", "pipe", "pipe"]
      })
      let output = ""
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
      child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
      const frames = () =>
        output
          .split("\n")
          .map((line) => line.replace(/^[<>\s]+/, "").trim())
          .filter((line) => line.startsWith("{"))
          .map((line) => JSON.parse(line) as { type: string; data?: unknown })
      try {
        yield* eventually(`subscribed (wscat printed: ${output})`, () => frames().some((f) => f.type === "subscribed"))
        yield* server.publishUnknown(channel, "said", { from: "ops", body: "hello, wscat" })
        yield* eventually(`the event (wscat printed: ${output})`, () => frames().some((f) => f.type === "event"))
        expect(frames()[0]).toMatchObject({ type: "welcome", user: null })
        expect(frames().find((f) => f.type === "event")).toMatchObject({
          event: "said",
          data: { from: "ops", body: "hello, wscat" }
        })
      } finally {
        child.kill()
      }
    })
  )
})
