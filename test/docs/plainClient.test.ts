/**
 * The plain JavaScript client of docs/protocol.md (the ```js file=plain-client.js block) runs as written against a
 * server that allows anonymous access: in a Node process of its own, with `ws` standing in for the browser's
 * WebSocket where Node has none, and the server's URL in place of the sample's. It must print the welcome and the
 * three events published to `broadcast`, in order.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { TidingsServer } from "../../src/server/Server.ts"
import { testServerLayer } from "../server/support/testServer.ts"
import { allCodeBlocks } from "./support/markdown.ts"

const SAMPLE_URL = "ws://127.0.0.1:4000/ws"

const sample = () => {
  const block = allCodeBlocks().find((b) => b.file === "docs/protocol.md" && b.fileName === "plain-client.js")
  if (!block) throw new Error("docs/protocol.md has no ```js file=plain-client.js block")
  if (!block.code.includes(SAMPLE_URL)) throw new Error(`the sample no longer connects to ${SAMPLE_URL}`)
  return block.code
}

layer(testServerLayer({ anonymous: true }), { excludeTestServices: true })(
  "the plain client of docs/protocol.md",
  (it) => {
    it.effect("prints the welcome and every event published to broadcast, in order", () =>
      Effect.gen(function* () {
        const server = yield* TidingsServer
        const dir = mkdtempSync(join(tmpdir(), "tidings-plain-client-"))
        const ws = pathToFileURL(createRequire(import.meta.url).resolve("ws")).href
        const file = join(dir, "plain-client.mjs")
        writeFileSync(
          file,
          `import WebSocketClass from ${JSON.stringify(ws)}\nglobalThis.WebSocket ??= WebSocketClass\n` +
            sample().replace(SAMPLE_URL, server.url)
        )
        const child = spawn(process.execPath, [file], { stdio: ["ignore", "pipe", "pipe"] })
        let output = ""
        child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
        child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
        const lines = () => output.trim().split("\n")
        try {
          const deadline = Date.now() + 10_000
          // it subscribes after its welcome: publish once the server has it subscribed
          while (!output.includes("welcome")) {
            if (Date.now() > deadline) throw new Error(`no welcome: ${output}`)
            yield* Effect.sleep(20)
          }
          yield* Effect.sleep(200)
          for (const n of [1, 2, 3])
            yield* server.publishUnknown("broadcast", "said", { from: "ops", body: `note ${n}` })
          while (lines().filter((l) => l.startsWith("broadcast #")).length < 3) {
            if (Date.now() > deadline) throw new Error(`not every event printed: ${output}`)
            yield* Effect.sleep(20)
          }
          const printed = lines()
          expect(printed[0]).toBe("welcome: chat v2, user null")
          expect(
            printed.filter((l) => l.startsWith("broadcast #")).map((l) => l.replace(/^broadcast #\d+ /, ""))
          ).toEqual([
            'said {"from":"ops","body":"note 1"}',
            'said {"from":"ops","body":"note 2"}',
            'said {"from":"ops","body":"note 3"}'
          ])
          expect(output).not.toContain("error")
        } finally {
          child.kill()
          rmSync(dir, { recursive: true, force: true })
        }
      })
    )
  }
)
